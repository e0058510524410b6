//! `reload` and `leave`: ask the local agent to reload its configuration or to leave
//! the cluster and shut down.

use super::{connect_agent, Verb};

const RELOAD_HELP: &str = "
Usage: praetor reload [options]

  Causes the agent to reload configurations. This can be used instead of sending
  the SIGHUP signal to the agent.
";

/// `reload`
pub(super) fn reload(args: &[String]) -> i32 {
    let mut v = Verb::new(RELOAD_HELP);
    v.client_flags();
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    match c.agent_reload() {
        Ok(()) => {
            println!("Configuration reload triggered");
            0
        }
        Err(e) => {
            eprintln!("Error reloading: {e}");
            1
        }
    }
}

const LEAVE_HELP: &str = "
Usage: praetor leave [options]

  Causes the agent to gracefully leave the cluster and shut down.
";

/// `leave`
pub(super) fn leave(args: &[String]) -> i32 {
    let mut v = Verb::new(LEAVE_HELP);
    v.client_flags();
    let p = or_exit!(v.parse(args));
    if !p.positional().is_empty() {
        // Go's %v of a []string: [a b]
        eprintln!(
            "Error found unexpected args: [{}]",
            p.positional().join(" ")
        );
        println!("{}", v.help());
        return 1;
    }
    let c = or_exit!(connect_agent(&p));
    match c.agent_leave() {
        Ok(()) => {
            println!("Graceful leave complete");
            0
        }
        Err(e) => {
            eprintln!("Error leaving: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_exit_1() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(leave(&a(&["extra"])), 1);
        assert_eq!(leave(&a(&["-datacenter=dc1"])), 1);
        assert_eq!(reload(&a(&["-http-addr=127.0.0.1:1"])), 1);
        assert_eq!(leave(&a(&["-http-addr=127.0.0.1:1"])), 1);
    }
}
