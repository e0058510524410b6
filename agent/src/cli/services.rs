//! `services register|deregister`: register services on the local agent from flags or
//! from service definition files (JSON or HCL, `service { ... }` / `services [...]`
//! blocks as in agent configuration), with Consul's messages.

use super::verb::{int, map};
use super::{connect_agent, dispatch, Sub, Verb};
use crate::api::{go_io_error, AgentServiceRegistration, ServiceAddress};
use serde_json::{Map, Value};

const HELP: &str = "
Usage: praetor services <subcommand> [options] [args]

  Subcommands for services registered with the local agent. See \"praetor
  catalog\" for the services of the whole catalog.

  Ask a subcommand for help for its flags and more examples.
";

const SUBS: &[Sub] = &[
    (
        "deregister",
        "Deregister services with the local agent",
        deregister,
    ),
    (
        "register",
        "Register services with the local agent",
        register,
    ),
];

/// `services <subcommand>`
pub(super) fn run(args: &[String]) -> i32 {
    dispatch(args, HELP, SUBS)
}

fn norm(k: &str) -> String {
    k.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn as_string(v: &Value, what: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("{what}: expected a string")),
    }
}

/// Converts one `service` block of a definition file to a registration. Keys match
/// case-insensitively with `_`/`-` ignored (`enable_tag_override`); fields the CLI does
/// not model are passed through for the agent.
pub(super) fn registration_from(def: &Value) -> Result<AgentServiceRegistration, String> {
    let obj = def
        .as_object()
        .ok_or_else(|| "service definition must be an object".to_string())?;
    let mut reg = AgentServiceRegistration::default();
    for (key, v) in obj {
        match norm(key).as_str() {
            "id" => reg.id = as_string(v, "id")?,
            "name" => reg.name = as_string(v, "name")?,
            "address" => reg.address = as_string(v, "address")?,
            "kind" => reg.kind = as_string(v, "kind")?,
            "socketpath" => reg.socket_path = as_string(v, "socket_path")?,
            "port" => {
                reg.port = match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| format!("port: expected an integer, got {v}"))?
            }
            "tags" => {
                let list = v
                    .as_array()
                    .ok_or_else(|| "tags: expected a list of strings".to_string())?;
                reg.tags = list
                    .iter()
                    .map(|t| as_string(t, "tags"))
                    .collect::<Result<_, _>>()?;
            }
            "meta" => {
                let m = v
                    .as_object()
                    .ok_or_else(|| "meta: expected a map of strings".to_string())?;
                for (mk, mv) in m {
                    reg.meta.insert(mk.clone(), as_string(mv, "meta")?);
                }
            }
            _ => {
                reg.extra.insert(key.clone(), v.clone());
            }
        }
    }
    Ok(reg)
}

/// The service definitions of a parsed configuration document (`service` as an object
/// or list, `services` as a list or object).
pub(super) fn definitions(doc: &Value) -> Result<Vec<AgentServiceRegistration>, String> {
    let mut out = Vec::new();
    let Some(top) = doc.as_object() else {
        return Err("configuration must be an object".into());
    };
    for (k, v) in top {
        if norm(k) != "service" && norm(k) != "services" {
            continue;
        }
        match v {
            Value::Array(list) => {
                for d in list {
                    out.push(registration_from(d)?);
                }
            }
            Value::Object(_) => out.push(registration_from(v)?),
            Value::Null => {}
            _ => return Err(format!("{k}: expected a service definition")),
        }
    }
    Ok(out)
}

/// Reads the service definitions of each file (`.hcl` as HCL, anything else as JSON).
pub(super) fn services_from_files(
    files: &[String],
) -> Result<Vec<AgentServiceRegistration>, String> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| format!("config: {}", go_io_error("open", f, &e)))?;
        let doc: Value = if f.ends_with(".hcl") {
            hcl::from_str(&text).map_err(|e| format!("config: failed to parse {f}: {e}"))?
        } else {
            serde_json::from_str(&text).map_err(|e| format!("config: failed to parse {f}: {e}"))?
        };
        out.extend(definitions(&doc).map_err(|e| format!("config: {f}: {e}"))?);
    }
    Ok(out)
}

const REGISTER_HELP: &str = "
Usage: praetor services register [options] [FILE...]

  Registers one or more services with the local agent, from service definition
  files (JSON or HCL, as in agent configuration) or from flags. The service stays
  registered until \"praetor services deregister\" removes it.

      $ praetor services register web.json
      $ praetor services register -name=web -port=80 -tag=v1
";

fn register(args: &[String]) -> i32 {
    let mut v = Verb::new(REGISTER_HELP);
    v.client_flags().server_flags().tenancy_flags();
    v.string("address", None, "Address of the service to register for arg-based registration.")
        .string("id", None, "ID of the service to register for arg-based registration. If this isn't set, it will default to the -name value.")
        .string("kind", None, "The services 'kind'")
        .map("meta", "Metadata to set on the service, formatted as key=value. This flag may be specified multiple times to set multiple meta fields.")
        .string("name", None, "Name of the service to register for arg-based registration.")
        .int("port", "Port of the service to register for arg-based registration.")
        .string("socket", None, "Path to the Unix domain socket to register for arg-based registration (conflicts with address and port).")
        .list("tag", "Tag to add to the service. This flag can be specified multiple times to set multiple tags.")
        .map("tagged-address", "Tagged address to set on the service, formatted as key=value. This flag may be specified multiple times to set multiple addresses.");
    let p = or_exit!(v.parse(args));
    let mut tagged = std::collections::BTreeMap::new();
    for (k, val) in map(&p, "tagged-address") {
        match ServiceAddress::parse(&val) {
            Ok(a) => {
                tagged.insert(k, a);
            }
            Err(e) => {
                eprintln!("Invalid Tagged Address: {e}");
                return 1;
            }
        }
    }
    let s = |n: &str| p.get_str(n).unwrap_or("").to_string();
    let name = s("name");
    let files = p.positional();
    if files.is_empty() && name.is_empty() {
        eprintln!("Service registration requires at least one argument or flags.");
        return 1;
    }
    if !files.is_empty() && !name.is_empty() {
        eprintln!("Service registration requires arguments or -id, not both.");
        return 1;
    }
    let svcs = if files.is_empty() {
        vec![AgentServiceRegistration {
            kind: s("kind"),
            id: s("id"),
            name,
            address: s("address"),
            port: int(&p, "port"),
            socket_path: s("socket"),
            tags: p.get_all("tag").into_iter().map(str::to_string).collect(),
            meta: map(&p, "meta"),
            tagged_addresses: tagged,
            extra: Map::new(),
        }]
    } else {
        match services_from_files(files) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("Error: {e}");
                return 1;
            }
        }
    };
    let c = or_exit!(connect_agent(&p));
    for svc in &svcs {
        if let Err(e) = c.agent_service_register(svc) {
            eprintln!("Error registering service {:?}: {e}", svc.name);
            return 1;
        }
        println!("Registered service: {}", svc.name);
    }
    0
}

const DEREGISTER_HELP: &str = "
Usage: praetor services deregister [options] [FILE...]

  Deregisters services from the local agent, by the definitions in the given
  files or by -id. It must run against the agent the service was registered on.

      $ praetor services deregister web.json db.json
      $ praetor services deregister -id=web
";

fn deregister(args: &[String]) -> i32 {
    let mut v = Verb::new(DEREGISTER_HELP);
    v.client_flags().server_flags().tenancy_flags();
    v.string(
        "id",
        None,
        "ID to delete. This must not be set if arguments are given.",
    );
    let p = or_exit!(v.parse(args));
    let id = p.get_str("id").unwrap_or("").to_string();
    let files = p.positional();
    if files.is_empty() && id.is_empty() {
        eprintln!("Service deregistration requires at least one argument or -id.");
        return 1;
    }
    if !files.is_empty() && !id.is_empty() {
        eprintln!("Service deregistration requires arguments or -id, not both.");
        return 1;
    }
    let svcs = if files.is_empty() {
        vec![AgentServiceRegistration {
            id,
            ..Default::default()
        }]
    } else {
        match services_from_files(files) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("Error: {e}");
                return 1;
            }
        }
    };
    let c = or_exit!(connect_agent(&p));
    for svc in &svcs {
        let id = if svc.id.is_empty() {
            &svc.name
        } else {
            &svc.id
        };
        if id.is_empty() {
            continue;
        }
        if let Err(e) = c.agent_service_deregister(id) {
            eprintln!("Error deregistering service {:?}: {e}", svc.name);
            return 1;
        }
        println!("Deregistered service: {id}");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_definitions() {
        let doc = json!({
            "service": {"name": "web", "port": 80, "tags": ["rails"], "meta": {"Owner": "me"},
                        "enable_tag_override": true, "check": {"ttl": "10s"}},
            "services": [{"ID": "db1", "Name": "db", "Port": "5432"}],
            "datacenter": "dc1"
        });
        let regs = definitions(&doc).unwrap();
        assert_eq!(regs.len(), 2);
        let web = regs.iter().find(|r| r.name == "web").unwrap();
        assert_eq!(
            (web.port, web.tags.as_slice()),
            (80, &["rails".to_string()][..])
        );
        assert_eq!(web.meta["Owner"], "me");
        assert_eq!(web.extra["enable_tag_override"], true);
        assert_eq!(web.extra["check"]["ttl"], "10s");
        let db = regs.iter().find(|r| r.name == "db").unwrap();
        assert_eq!((db.id.as_str(), db.port), ("db1", 5432));
        assert!(definitions(&json!({"service": {"port": "x"}})).is_err());
        assert!(definitions(&json!({"datacenter": "dc1"}))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn hcl_definitions_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let one = dir.path().join("web.hcl");
        std::fs::write(
            &one,
            "service {\n  name = \"web\"\n  port = 80\n  tags = [\"a\", \"b\"]\n  check {\n    ttl = \"10s\"\n  }\n}\n",
        )
        .unwrap();
        let two = dir.path().join("two.hcl");
        std::fs::write(
            &two,
            "service {\n  name = \"a\"\n}\nservice {\n  name = \"b\"\n  id = \"b1\"\n}\n",
        )
        .unwrap();
        let js = dir.path().join("db.json");
        std::fs::write(&js, r#"{"service": {"name": "db", "port": 5432}}"#).unwrap();
        let files: Vec<String> = [&one, &two, &js]
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let regs = services_from_files(&files).unwrap();
        let names: Vec<&str> = regs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["web", "a", "b", "db"]);
        assert_eq!(regs[0].tags, ["a", "b"]);
        assert_eq!(regs[0].extra["check"]["ttl"], "10s");
        assert_eq!(regs[2].id, "b1");
        let err = services_from_files(&["/nonexistent.json".to_string()]).unwrap_err();
        assert_eq!(
            err,
            "config: open /nonexistent.json: no such file or directory"
        );
    }

    #[test]
    fn argument_checks() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(register(&a(&[])), 1);
        assert_eq!(register(&a(&["-name=web", "file.json"])), 1);
        assert_eq!(
            register(&a(&["-name=web", "-tagged-address", "lan=h:x"])),
            1
        );
        assert_eq!(register(&a(&["-name=web", "-port=x"])), 1);
        assert_eq!(deregister(&a(&[])), 1);
        assert_eq!(deregister(&a(&["-id=web", "file.json"])), 1);
        assert_eq!(register(&a(&["/nonexistent.json"])), 1);
    }
}
