//! `acl bootstrap | token | policy | role ...` with Consul's flags and its "pretty"
//! output (or `-format=json`).

use super::verb::flag;
use super::{connect_agent, dispatch, load_data_source, Sub, Verb};
use crate::acl::{AclPolicy, AclRole, AclToken, Link, NodeIdentity, ServiceIdentity};
use crate::api::acl::Kind;
use crate::api::Client;
use crate::flags::Parsed;
use serde_json::{json, Value};

const HELP: &str = "
Usage: praetor acl <subcommand> [options] [args]

  This command has subcommands for interacting with Consul's ACLs.
  Here are some simple examples, and more detailed examples are available
  in the subcommands or the documentation.

  Bootstrap ACLs:

      $ praetor acl bootstrap

  List all ACL tokens:

      $ praetor acl token list

  Create a new ACL policy:

      $ praetor acl policy create -name \"new-policy\" \\
                                 -description \"This is an example policy\" \\
                                 -datacenter \"dc1\" \\
                                 -rules @rules.hcl

  For more examples, ask for subcommand help or view the documentation.
";

const SUBS: &[Sub] = &[
    ("bootstrap", "Bootstrap Consul's ACL system", bootstrap),
    ("token", "Manage Consul's ACL tokens", token),
    ("policy", "Manage Consul's ACL policies", policy),
    ("role", "Manage Consul's ACL roles", role),
];

/// `acl <subcommand>`
pub(super) fn run(args: &[String]) -> i32 {
    dispatch(args, HELP, SUBS)
}

// ---- formatting ----

/// Go's `time.Time.String()` for an RFC 3339 UTC time: `2026-11-25 10:53:15.30795496 +0000 UTC`.
fn go_time(rfc: &str) -> String {
    let Some((date, rest)) = rfc.split_once('T') else {
        return rfc.to_string();
    };
    let rest = rest.trim_end_matches('Z');
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{date} {hms} +0000 UTC")
    } else {
        format!("{date} {hms}.{frac} +0000 UTC")
    }
}

fn links(out: &mut String, title: &str, l: &[Link]) {
    if !l.is_empty() {
        out.push_str(&format!("{title}:\n"));
        for x in l {
            out.push_str(&format!("   {} - {}\n", x.id, x.name));
        }
    }
}

fn identities(out: &mut String, s: &[ServiceIdentity], n: &[NodeIdentity]) {
    if !s.is_empty() {
        out.push_str("Service Identities:\n");
        for i in s {
            let dcs = if i.datacenters.is_empty() {
                "all".to_string()
            } else {
                i.datacenters.join(", ")
            };
            out.push_str(&format!("   {} (Datacenters: {dcs})\n", i.service_name));
        }
    }
    if !n.is_empty() {
        out.push_str("Node Identities:\n");
        for i in n {
            out.push_str(&format!(
                "   {} (Datacenter: {})\n",
                i.node_name, i.datacenter
            ));
        }
    }
}

/// Consul's pretty token format.
pub(crate) fn format_token(t: &AclToken) -> String {
    let mut s = format!(
        "AccessorID:       {}\nSecretID:         {}\nDescription:      {}\nLocal:            {}\nCreate Time:      {}\n",
        t.accessor_id,
        t.secret_id,
        t.description,
        t.local,
        go_time(&t.create_time)
    );
    links(&mut s, "Policies", &t.policies);
    links(&mut s, "Roles", &t.roles);
    identities(&mut s, &t.service_identities, &t.node_identities);
    s
}

/// Consul's pretty policy format.
pub(crate) fn format_policy(p: &AclPolicy) -> String {
    format!(
        "ID:           {}\nName:         {}\nDescription:  {}\nDatacenters:  {}\nRules:\n{}\n",
        p.id,
        p.name,
        p.description,
        p.datacenters.clone().unwrap_or_default().join(", "),
        p.rules
    )
}

fn format_policy_entry(p: &AclPolicy) -> String {
    format!(
        "{}:\n   ID:           {}\n   Description:  {}\n   Datacenters:  {}\n",
        p.name,
        p.id,
        p.description,
        p.datacenters.clone().unwrap_or_default().join(", ")
    )
}

/// Consul's pretty role format.
pub(crate) fn format_role(r: &AclRole) -> String {
    let mut s = format!(
        "ID:           {}\nName:         {}\nDescription:  {}\n",
        r.id, r.name, r.description
    );
    links(&mut s, "Policies", &r.policies);
    identities(&mut s, &r.service_identities, &r.node_identities);
    s
}

fn format_flag(v: &mut Verb) {
    v.string("format", Some("pretty"), "Output format {pretty|json}");
}

/// Print in the requested format; an unknown format is an error.
fn show<T: serde::Serialize>(p: &Parsed, v: &T, pretty: impl Fn(&T) -> String) -> i32 {
    match p.get_str("format").unwrap_or("pretty") {
        "pretty" => {
            print!("{}", pretty(v));
            0
        }
        "json" => match serde_json::to_string_pretty(v) {
            Ok(s) => {
                println!("{s}");
                0
            }
            Err(e) => {
                eprintln!("Error encoding output: {e}");
                1
            }
        },
        f => {
            eprintln!("Invalid format: {f}");
            1
        }
    }
}

fn verb(help: &'static str) -> Verb {
    let mut v = Verb::new(help);
    v.client_flags().server_flags();
    v
}

fn required<'a>(p: &'a Parsed, name: &str, what: &str) -> Result<&'a str, i32> {
    match p.get_str(name).filter(|s| !s.is_empty()) {
        Some(s) => Ok(s),
        None => {
            eprintln!("Must specify the -{name} parameter {what}");
            Err(1)
        }
    }
}

fn policy_links(p: &Parsed, id_flag: &str, name_flag: &str) -> Vec<Value> {
    let mut v: Vec<Value> = p
        .get_all(id_flag)
        .into_iter()
        .map(|i| json!({ "ID": i }))
        .collect();
    v.extend(
        p.get_all(name_flag)
            .into_iter()
            .map(|n| json!({ "Name": n })),
    );
    v
}

fn service_identities(p: &Parsed) -> Result<Vec<Value>, i32> {
    p.get_all("service-identity")
        .into_iter()
        .map(|s| {
            let mut parts = s.splitn(2, ':');
            let name = parts.next().unwrap_or("");
            if name.is_empty() {
                eprintln!("Malformed -service-identity argument: {s:?}");
                return Err(1);
            }
            let dcs: Vec<&str> = parts
                .next()
                .map(|d| d.split(',').filter(|x| !x.is_empty()).collect())
                .unwrap_or_default();
            Ok(json!({ "ServiceName": name, "Datacenters": dcs }))
        })
        .collect()
}

fn node_identities(p: &Parsed) -> Result<Vec<Value>, i32> {
    p.get_all("node-identity")
        .into_iter()
        .map(|s| match s.split_once(':') {
            Some((n, dc)) if !n.is_empty() && !dc.is_empty() => {
                Ok(json!({ "NodeName": n, "Datacenter": dc }))
            }
            _ => {
                eprintln!("Malformed -node-identity argument: {s:?}");
                Err(1)
            }
        })
        .collect()
}

fn resolve(c: &Client, kind: Kind, id: &str, what: &str) -> Result<String, i32> {
    c.acl_resolve_id(kind, id).map_err(|e| {
        eprintln!("Error determining {what} ID: {e}");
        1
    })
}

// ---- bootstrap ----

const BOOTSTRAP_HELP: &str = "
Usage: praetor acl bootstrap [options]

  The bootstrap command will request Consul to generate a new token with unlimited
  privileges to use for management purposes and output its details. This can only
  be done once and afterwards bootstrapping will be disabled.

      $ praetor acl bootstrap
";

fn bootstrap(args: &[String]) -> i32 {
    let mut v = verb(BOOTSTRAP_HELP);
    format_flag(&mut v);
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    match c.acl_bootstrap() {
        Ok(t) => show(&p, &t, format_token),
        Err(e) => {
            eprintln!("Failed ACL bootstrapping: {e}");
            1
        }
    }
}

// ---- tokens ----

const TOKEN_HELP: &str = "
Usage: praetor acl token <subcommand> [options] [args]

  This command has subcommands for managing Consul's ACL tokens.

      $ praetor acl token create -description \"my token\" -policy-name \"app\"
      $ praetor acl token list
      $ praetor acl token read -id <accessor>
      $ praetor acl token delete -id <accessor>
";

const TOKEN_SUBS: &[Sub] = &[
    ("create", "Create an ACL token", token_create),
    ("clone", "Clone an ACL token", token_clone),
    ("delete", "Delete an ACL token", token_delete),
    ("list", "List ACL tokens", token_list),
    ("read", "Read an ACL token", token_read),
    ("update", "Update an ACL token", token_update),
];

fn token(args: &[String]) -> i32 {
    dispatch(args, TOKEN_HELP, TOKEN_SUBS)
}

fn token_link_flags(v: &mut Verb) {
    v.list("policy-id", "ID of a policy to use for this token. May be specified multiple times.")
        .list("policy-name", "Name of a policy to use for this token. May be specified multiple times.")
        .list("role-id", "ID of a role to use for this token. May be specified multiple times.")
        .list("role-name", "Name of a role to use for this token. May be specified multiple times.")
        .list("service-identity", "Name of a service identity to use for this token, optionally followed by ':' and datacenters separated by ','. May be specified multiple times.")
        .list("node-identity", "Name of a node identity to use for this token, as NODE:DATACENTER. May be specified multiple times.");
}

const TOKEN_CREATE_HELP: &str = "
Usage: praetor acl token create [options]

  Create a new token:

      $ praetor acl token create -description \"Replication token\" -policy-id b52fc3de-5 -policy-name \"acl-replication\"
";

fn token_create(args: &[String]) -> i32 {
    let mut v = verb(TOKEN_CREATE_HELP);
    format_flag(&mut v);
    token_link_flags(&mut v);
    v.string("description", None, "A description of the token")
        .string("accessor", None, "Create the token with this Accessor ID")
        .string("secret", None, "Create the token with this Secret ID")
        .bool("local", "Create this as a datacenter local token");
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    let body = json!({
        "Description": p.get_str("description").unwrap_or(""),
        "AccessorID": p.get_str("accessor").unwrap_or(""),
        "SecretID": p.get_str("secret").unwrap_or(""),
        "Local": flag(&p, "local"),
        "Policies": policy_links(&p, "policy-id", "policy-name"),
        "Roles": policy_links(&p, "role-id", "role-name"),
        "ServiceIdentities": or_exit!(service_identities(&p)),
        "NodeIdentities": or_exit!(node_identities(&p)),
    });
    match c.acl_write::<AclToken>(Kind::Token, None, &body) {
        Ok(t) => show(&p, &t, format_token),
        Err(e) => {
            eprintln!("Failed to create new token: {e}");
            1
        }
    }
}

const TOKEN_CLONE_HELP: &str = "
Usage: praetor acl token clone [options]

  Clone a token (new accessor and secret, same policies):

      $ praetor acl token clone -id abcd -description \"Clone of abcd\"
";

fn token_clone(args: &[String]) -> i32 {
    let mut v = verb(TOKEN_CLONE_HELP);
    format_flag(&mut v);
    v.string("id", None, "The Accessor ID of the token to clone. It may be specified as a unique ID prefix but will error if the prefix matches multiple token Accessor IDs")
        .string("description", None, "A description of the new cloned token");
    let p = or_exit!(v.parse(args));
    let id = or_exit!(required(&p, "id", "to identify the token to clone"));
    let c = or_exit!(connect_agent(&p));
    let id = or_exit!(resolve(&c, Kind::Token, id, "token"));
    match c.acl_token_clone(&id, p.get_str("description").unwrap_or("")) {
        Ok(t) => show(&p, &t, format_token),
        Err(e) => {
            eprintln!("Failed to clone token: {e}");
            1
        }
    }
}

const TOKEN_DELETE_HELP: &str = "
Usage: praetor acl token delete [options] -id TOKEN

  Deletes an ACL token by providing its accessor ID:

      $ praetor acl token delete -id b6b85
";

fn token_delete(args: &[String]) -> i32 {
    let mut v = verb(TOKEN_DELETE_HELP);
    v.string("id", None, "The Accessor ID of the token to delete. It may be specified as a unique ID prefix but will error if the prefix matches multiple token Accessor IDs");
    let p = or_exit!(v.parse(args));
    let id = or_exit!(required(&p, "id", "to indicate the token to delete"));
    let c = or_exit!(connect_agent(&p));
    let id = or_exit!(resolve(&c, Kind::Token, id, "token"));
    match c.acl_delete(Kind::Token, &id) {
        Ok(()) => {
            println!("Token \"{id}\" deleted successfully");
            0
        }
        Err(e) => {
            eprintln!("Error deleting token {id:?}: {e}");
            1
        }
    }
}

const TOKEN_LIST_HELP: &str = "
Usage: praetor acl token list [options]

  Lists all the ACL tokens known to Consul:

      $ praetor acl token list
";

fn token_list(args: &[String]) -> i32 {
    let mut v = verb(TOKEN_LIST_HELP);
    format_flag(&mut v);
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    match c.acl_list::<AclToken>(Kind::Token) {
        Ok(list) => show(&p, &list, |l| {
            l.iter().map(format_token).collect::<Vec<_>>().join("\n")
        }),
        Err(e) => {
            eprintln!("Failed to retrieve the token list: {e}");
            1
        }
    }
}

const TOKEN_READ_HELP: &str = "
Usage: praetor acl token read [options] -id TOKENID

  Reads an ACL token by accessor ID, or the token in use with -self:

      $ praetor acl token read -id 4be56c77-82
      $ praetor acl token read -self
";

fn token_read(args: &[String]) -> i32 {
    let mut v = verb(TOKEN_READ_HELP);
    format_flag(&mut v);
    v.string("id", None, "The Accessor ID of the token to read. It may be specified as a unique ID prefix but will error if the prefix matches multiple token Accessor IDs")
        .bool("self", "Indicates that the current HTTP token should be read by secret ID instead of expecting a -id option")
        .bool("expanded", "Indicates that the contents of the policies and roles affecting the token should also be shown (accepted; the pretty output lists links)");
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    let r = if flag(&p, "self") {
        c.acl_token_self()
    } else {
        let id = or_exit!(required(&p, "id", "to indicate the token to read"));
        let id = or_exit!(resolve(&c, Kind::Token, id, "token"));
        c.acl_read::<AclToken>(Kind::Token, &id)
    };
    match r {
        Ok(t) => show(&p, &t, format_token),
        Err(e) => {
            eprintln!("Error reading token: {e}");
            1
        }
    }
}

const TOKEN_UPDATE_HELP: &str = "
Usage: praetor acl token update [options]

  Updates a token; -policy-*/-role-* replace the links, -append-* add to them:

      $ praetor acl token update -id 986193 -description \"WonderToken\" -append-policy-name kv
";

fn token_update(args: &[String]) -> i32 {
    let mut v = verb(TOKEN_UPDATE_HELP);
    format_flag(&mut v);
    token_link_flags(&mut v);
    v.string("id", None, "The Accessor ID of the token to update. It may be specified as a unique ID prefix but will error if the prefix matches multiple token Accessor IDs")
        .string("description", None, "A description of the token")
        .list("append-policy-id", "ID of a policy to add to this token. May be specified multiple times.")
        .list("append-policy-name", "Name of a policy to add to this token. May be specified multiple times.")
        .list("append-role-id", "ID of a role to add to this token. May be specified multiple times.")
        .list("append-role-name", "Name of a role to add to this token. May be specified multiple times.");
    let p = or_exit!(v.parse(args));
    let id = or_exit!(required(&p, "id", "to indicate the token to update"));
    let c = or_exit!(connect_agent(&p));
    let id = or_exit!(resolve(&c, Kind::Token, id, "token"));
    let cur = match c.acl_read::<AclToken>(Kind::Token, &id) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error when retrieving current token: {e}");
            return 1;
        }
    };
    let mut body = match serde_json::to_value(&cur) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("Error encoding token: {e}");
            return 1;
        }
    };
    if let Some(d) = p.get_str("description") {
        body["Description"] = json!(d);
    }
    let replace_pol = p.is_set("policy-id") || p.is_set("policy-name");
    let mut pols: Vec<Value> = if replace_pol {
        policy_links(&p, "policy-id", "policy-name")
    } else {
        cur.policies.iter().map(|l| json!({"ID": l.id})).collect()
    };
    pols.extend(policy_links(&p, "append-policy-id", "append-policy-name"));
    body["Policies"] = json!(pols);
    let replace_roles = p.is_set("role-id") || p.is_set("role-name");
    let mut roles: Vec<Value> = if replace_roles {
        policy_links(&p, "role-id", "role-name")
    } else {
        cur.roles.iter().map(|l| json!({"ID": l.id})).collect()
    };
    roles.extend(policy_links(&p, "append-role-id", "append-role-name"));
    body["Roles"] = json!(roles);
    if p.is_set("service-identity") {
        body["ServiceIdentities"] = json!(or_exit!(service_identities(&p)));
    }
    if p.is_set("node-identity") {
        body["NodeIdentities"] = json!(or_exit!(node_identities(&p)));
    }
    match c.acl_write::<AclToken>(Kind::Token, Some(&id), &body) {
        Ok(t) => {
            if p.get_str("format").unwrap_or("pretty") == "pretty" {
                println!("Token updated successfully.");
            }
            show(&p, &t, format_token)
        }
        Err(e) => {
            eprintln!("Failed to update token {id}: {e}");
            1
        }
    }
}

// ---- policies ----

const POLICY_HELP: &str = "
Usage: praetor acl policy <subcommand> [options] [args]

  This command has subcommands for managing Consul's ACL policies.

      $ praetor acl policy create -name \"new-policy\" -rules @rules.hcl
      $ praetor acl policy list
      $ praetor acl policy read -name my-policy
      $ praetor acl policy delete -id c0a1
";

const POLICY_SUBS: &[Sub] = &[
    ("create", "Create an ACL policy", policy_create),
    ("delete", "Delete an ACL policy", policy_delete),
    ("list", "Lists ACL policies", policy_list),
    ("read", "Read an ACL policy", policy_read),
    ("update", "Update an ACL policy", policy_update),
];

fn policy(args: &[String]) -> i32 {
    dispatch(args, POLICY_HELP, POLICY_SUBS)
}

fn rules_arg(p: &Parsed) -> Result<Option<String>, i32> {
    match p.get_str("rules") {
        None => Ok(None),
        Some(r) => match load_data_source(r) {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Err(e) => {
                eprintln!("Error loading rules: {e}");
                Err(1)
            }
        },
    }
}

const POLICY_CREATE_HELP: &str = "
Usage: praetor acl policy create -name NAME [options]

  Create a new policy (rules as text, @file or - for stdin):

      $ praetor acl policy create -name \"new-policy\" -description \"This is an example policy\" -rules @rules.hcl
";

fn policy_create(args: &[String]) -> i32 {
    let mut v = verb(POLICY_CREATE_HELP);
    format_flag(&mut v);
    v.string("name", None, "The new policy's name. This flag is required.")
        .string("description", None, "A description of the policy")
        .list("valid-datacenter", "Datacenter that the policy should be valid within. This flag may be specified multiple times")
        .string("rules", None, "The policy rules. May be prefixed with '@' to indicate that the value is a file path to load the rules from. '-' may also be given to indicate that the rules are available on stdin");
    let p = or_exit!(v.parse(args));
    let name = or_exit!(required(&p, "name", "to create a policy"));
    let rules = or_exit!(rules_arg(&p)).unwrap_or_default();
    let dcs: Vec<&str> = p.get_all("valid-datacenter");
    let c = or_exit!(connect_agent(&p));
    let body = json!({
        "Name": name,
        "Description": p.get_str("description").unwrap_or(""),
        "Rules": rules,
        "Datacenters": if dcs.is_empty() { Value::Null } else { json!(dcs) },
    });
    match c.acl_write::<AclPolicy>(Kind::Policy, None, &body) {
        Ok(pol) => show(&p, &pol, format_policy),
        Err(e) => {
            eprintln!("Failed to create new policy: {e}");
            1
        }
    }
}

fn policy_id(c: &Client, p: &Parsed, what: &str) -> Result<String, i32> {
    if let Some(name) = p.get_str("name").filter(|n| !n.is_empty()) {
        return c
            .acl_read_by_name::<AclPolicy>(Kind::Policy, name)
            .map(|pol| pol.id)
            .map_err(|e| {
                eprintln!("Error determining policy ID: {e}");
                1
            });
    }
    let id = required(p, "id", what)?;
    resolve(c, Kind::Policy, id, "policy")
}

const POLICY_DELETE_HELP: &str = "
Usage: praetor acl policy delete [options] -id POLICY

  Deletes an ACL policy by providing either the ID or the name:

      $ praetor acl policy delete -id b6b85
      $ praetor acl policy delete -name my-policy
";

fn policy_delete(args: &[String]) -> i32 {
    let mut v = verb(POLICY_DELETE_HELP);
    v.string("id", None, "The ID of the policy to delete. It may be specified as a unique ID prefix but will error if the prefix matches multiple policy IDs")
        .string("name", None, "The Name of the policy to delete.");
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    let id = or_exit!(policy_id(
        &c,
        &p,
        "or the -name parameter to identify the policy to delete"
    ));
    match c.acl_delete(Kind::Policy, &id) {
        Ok(()) => {
            println!("Policy \"{id}\" deleted successfully");
            0
        }
        Err(e) => {
            eprintln!("Error deleting policy {id:?}: {e}");
            1
        }
    }
}

const POLICY_LIST_HELP: &str = "
Usage: praetor acl policy list [options]

  Lists all the ACL policies:

      $ praetor acl policy list
";

fn policy_list(args: &[String]) -> i32 {
    let mut v = verb(POLICY_LIST_HELP);
    format_flag(&mut v);
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    match c.acl_list::<AclPolicy>(Kind::Policy) {
        Ok(list) => show(&p, &list, |l| {
            l.iter()
                .map(format_policy_entry)
                .collect::<Vec<_>>()
                .join("")
        }),
        Err(e) => {
            eprintln!("Failed to retrieve the policy list: {e}");
            1
        }
    }
}

const POLICY_READ_HELP: &str = "
Usage: praetor acl policy read [options] POLICY

  Reads an ACL policy by ID or name:

      $ praetor acl policy read -id fdabbcb5-9de5-4b1a-961f-77214ae88cba
      $ praetor acl policy read -name my-policy
";

fn policy_read(args: &[String]) -> i32 {
    let mut v = verb(POLICY_READ_HELP);
    format_flag(&mut v);
    v.string("id", None, "The ID of the policy to read. It may be specified as a unique ID prefix but will error if the prefix matches multiple policy IDs")
        .string("name", None, "The name of the policy to read.");
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    let id = or_exit!(policy_id(
        &c,
        &p,
        "or the -name parameter to identify the policy to read"
    ));
    match c.acl_read::<AclPolicy>(Kind::Policy, &id) {
        Ok(pol) => show(&p, &pol, format_policy),
        Err(e) => {
            eprintln!("Error reading policy {id:?}: {e}");
            1
        }
    }
}

const POLICY_UPDATE_HELP: &str = "
Usage: praetor acl policy update [options]

  Updates a policy; fields not given keep their values:

      $ praetor acl policy update -id 35b8 -name \"replication\" -rules @rules.hcl
";

fn policy_update(args: &[String]) -> i32 {
    let mut v = verb(POLICY_UPDATE_HELP);
    format_flag(&mut v);
    v.string("id", None, "The ID of the policy to update. It may be specified as a unique ID prefix but will error if the prefix matches multiple policy IDs")
        .string("name", None, "The name of the policy to update (or its new name, with -id).")
        .string("description", None, "A description of the policy")
        .list("valid-datacenter", "Datacenter that the policy should be valid within.")
        .string("rules", None, "The policy rules. May be prefixed with '@' to indicate that the value is a file path to load the rules from. '-' may also be given to indicate that the rules are available on stdin");
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    let id = match p.get_str("id").filter(|s| !s.is_empty()) {
        Some(id) => or_exit!(resolve(&c, Kind::Policy, id, "policy")),
        None => or_exit!(policy_id(
            &c,
            &p,
            "or the -name parameter to identify the policy to update"
        )),
    };
    let cur = match c.acl_read::<AclPolicy>(Kind::Policy, &id) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("Error retrieving current policy: {e}");
            return 1;
        }
    };
    let rules = or_exit!(rules_arg(&p)).unwrap_or(cur.rules.clone());
    let dcs: Vec<&str> = p.get_all("valid-datacenter");
    let body = json!({
        "ID": id,
        "Name": p.get_str("name").filter(|n| !n.is_empty()).unwrap_or(&cur.name),
        "Description": p.get_str("description").unwrap_or(&cur.description),
        "Rules": rules,
        "Datacenters": if dcs.is_empty() { json!(cur.datacenters) } else { json!(dcs) },
    });
    match c.acl_write::<AclPolicy>(Kind::Policy, Some(&id), &body) {
        Ok(pol) => show(&p, &pol, format_policy),
        Err(e) => {
            eprintln!("Failed to update policy {id}: {e}");
            1
        }
    }
}

// ---- roles ----

const ROLE_HELP: &str = "
Usage: praetor acl role <subcommand> [options] [args]

  This command has subcommands for managing Consul's ACL roles.

      $ praetor acl role create -name \"new-role\" -policy-name \"app\"
      $ praetor acl role list
      $ praetor acl role read -name new-role
      $ praetor acl role delete -id c0a1
";

const ROLE_SUBS: &[Sub] = &[
    ("create", "Create an ACL role", role_create),
    ("delete", "Delete an ACL role", role_delete),
    ("list", "Lists ACL roles", role_list),
    ("read", "Read an ACL role", role_read),
    ("update", "Update an ACL role", role_update),
];

fn role(args: &[String]) -> i32 {
    dispatch(args, ROLE_HELP, ROLE_SUBS)
}

fn role_id(c: &Client, p: &Parsed, what: &str) -> Result<String, i32> {
    if let Some(name) = p.get_str("name").filter(|n| !n.is_empty()) {
        return c
            .acl_read_by_name::<AclRole>(Kind::Role, name)
            .map(|r| r.id)
            .map_err(|e| {
                eprintln!("Error determining role ID: {e}");
                1
            });
    }
    let id = required(p, "id", what)?;
    resolve(c, Kind::Role, id, "role")
}

const ROLE_CREATE_HELP: &str = "
Usage: praetor acl role create -name NAME [options]

  Create a new role:

      $ praetor acl role create -name \"new-role\" -description \"This is an example role\" -policy-id abcd -policy-name \"policy-name\"
";

fn role_create(args: &[String]) -> i32 {
    let mut v = verb(ROLE_CREATE_HELP);
    format_flag(&mut v);
    v.string("name", None, "The new role's name. This flag is required.")
        .string("description", None, "A description of the role")
        .list("policy-id", "ID of a policy to use for this role. May be specified multiple times.")
        .list("policy-name", "Name of a policy to use for this role. May be specified multiple times.")
        .list("service-identity", "Name of a service identity to use for this role. May be specified multiple times.")
        .list("node-identity", "Name of a node identity to use for this role, as NODE:DATACENTER. May be specified multiple times.");
    let p = or_exit!(v.parse(args));
    let name = or_exit!(required(&p, "name", "to create a role"));
    let c = or_exit!(connect_agent(&p));
    let body = json!({
        "Name": name,
        "Description": p.get_str("description").unwrap_or(""),
        "Policies": policy_links(&p, "policy-id", "policy-name"),
        "ServiceIdentities": or_exit!(service_identities(&p)),
        "NodeIdentities": or_exit!(node_identities(&p)),
    });
    match c.acl_write::<AclRole>(Kind::Role, None, &body) {
        Ok(r) => show(&p, &r, format_role),
        Err(e) => {
            eprintln!("Failed to create new role: {e}");
            1
        }
    }
}

const ROLE_DELETE_HELP: &str = "
Usage: praetor acl role delete [options] -id ROLE

  Deletes an ACL role by providing either the ID or the name:

      $ praetor acl role delete -id b6b85
      $ praetor acl role delete -name my-role
";

fn role_delete(args: &[String]) -> i32 {
    let mut v = verb(ROLE_DELETE_HELP);
    v.string("id", None, "The ID of the role to delete. It may be specified as a unique ID prefix but will error if the prefix matches multiple role IDs")
        .string("name", None, "The Name of the role to delete.");
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    let id = or_exit!(role_id(
        &c,
        &p,
        "or the -name parameter to identify the role to delete"
    ));
    match c.acl_delete(Kind::Role, &id) {
        Ok(()) => {
            println!("Role \"{id}\" deleted successfully");
            0
        }
        Err(e) => {
            eprintln!("Error deleting role {id:?}: {e}");
            1
        }
    }
}

const ROLE_LIST_HELP: &str = "
Usage: praetor acl role list [options]

  Lists all the ACL roles:

      $ praetor acl role list
";

fn role_list(args: &[String]) -> i32 {
    let mut v = verb(ROLE_LIST_HELP);
    format_flag(&mut v);
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    match c.acl_list::<AclRole>(Kind::Role) {
        Ok(list) => show(&p, &list, |l| {
            l.iter().map(format_role).collect::<Vec<_>>().join("\n")
        }),
        Err(e) => {
            eprintln!("Failed to retrieve the role list: {e}");
            1
        }
    }
}

const ROLE_READ_HELP: &str = "
Usage: praetor acl role read [options] ROLE

  Reads an ACL role by ID or name:

      $ praetor acl role read -id fdabbcb5
      $ praetor acl role read -name my-role
";

fn role_read(args: &[String]) -> i32 {
    let mut v = verb(ROLE_READ_HELP);
    format_flag(&mut v);
    v.string("id", None, "The ID of the role to read. It may be specified as a unique ID prefix but will error if the prefix matches multiple role IDs")
        .string("name", None, "The name of the role to read.");
    let p = or_exit!(v.parse(args));
    let c = or_exit!(connect_agent(&p));
    let id = or_exit!(role_id(
        &c,
        &p,
        "or the -name parameter to identify the role to read"
    ));
    match c.acl_read::<AclRole>(Kind::Role, &id) {
        Ok(r) => show(&p, &r, format_role),
        Err(e) => {
            eprintln!("Error reading role {id:?}: {e}");
            1
        }
    }
}

const ROLE_UPDATE_HELP: &str = "
Usage: praetor acl role update [options]

  Updates a role; -policy-* replace its policies, fields not given keep their values:

      $ praetor acl role update -id abcd -name \"better-name\" -policy-name kv
";

fn role_update(args: &[String]) -> i32 {
    let mut v = verb(ROLE_UPDATE_HELP);
    format_flag(&mut v);
    v.string("id", None, "The ID of the role to update. It may be specified as a unique ID prefix but will error if the prefix matches multiple role IDs")
        .string("name", None, "The new name of the role")
        .string("description", None, "A description of the role")
        .list("policy-id", "ID of a policy to use for this role. May be specified multiple times.")
        .list("policy-name", "Name of a policy to use for this role. May be specified multiple times.");
    let p = or_exit!(v.parse(args));
    let id = or_exit!(required(&p, "id", "to identify the role to update"));
    let c = or_exit!(connect_agent(&p));
    let id = or_exit!(resolve(&c, Kind::Role, id, "role"));
    let cur = match c.acl_read::<AclRole>(Kind::Role, &id) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("Error retrieving current role: {e}");
            return 1;
        }
    };
    let pols = if p.is_set("policy-id") || p.is_set("policy-name") {
        policy_links(&p, "policy-id", "policy-name")
    } else {
        cur.policies.iter().map(|l| json!({"ID": l.id})).collect()
    };
    let body = json!({
        "ID": id,
        "Name": p.get_str("name").filter(|n| !n.is_empty()).unwrap_or(&cur.name),
        "Description": p.get_str("description").unwrap_or(&cur.description),
        "Policies": pols,
        "ServiceIdentities": cur.service_identities,
        "NodeIdentities": cur.node_identities,
    });
    match c.acl_write::<AclRole>(Kind::Role, Some(&id), &body) {
        Ok(r) => show(&p, &r, format_role),
        Err(e) => {
            eprintln!("Failed to update role {id}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_format() {
        assert_eq!(
            go_time("2026-11-25T10:53:15.307954960Z"),
            "2026-11-25 10:53:15.30795496 +0000 UTC"
        );
        assert_eq!(
            go_time("2026-11-25T10:53:15.000000000Z"),
            "2026-11-25 10:53:15 +0000 UTC"
        );
    }

    #[test]
    fn token_format_matches_consul() {
        let t = AclToken {
            accessor_id: "a".into(),
            secret_id: "s".into(),
            description: "d".into(),
            policies: vec![Link {
                id: "p1".into(),
                name: "global-management".into(),
            }],
            create_time: "2026-01-02T03:04:05.000000000Z".into(),
            ..Default::default()
        };
        assert_eq!(
            format_token(&t),
            "AccessorID:       a\nSecretID:         s\nDescription:      d\nLocal:            false\nCreate Time:      2026-01-02 03:04:05 +0000 UTC\nPolicies:\n   p1 - global-management\n"
        );
    }
}
