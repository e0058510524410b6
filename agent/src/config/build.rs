//! Builds a [`RuntimeConfig`] from the sources named by [`AgentFlags`]:
//! merge in precedence order, resolve typed values, validate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::normalize::{normalize, NormError};
use super::source::{
    apply_deprecations, defaults, dev_defaults, merge_map, parse_source, sources_from_path, Format,
    Source,
};
use super::validate::{
    hostname, invalid, normalize_log_level, parse_ip, validate_addr_list, validate_basic_name,
    validate_bind_addr, validate_checks, validate_encrypt_key, validate_listeners,
    validate_node_id, validate_node_meta, validate_services, Def,
};
use super::{Addresses, AgentFlags, ConfigError, Performance, Ports, RuntimeConfig};
use crate::flags::parse_duration;

/// Loads every source in precedence order and builds the runtime config.
pub(crate) fn build(flags: &AgentFlags) -> Result<RuntimeConfig, ConfigError> {
    build_with(flags, Vec::new())
}

/// [`build`] with in-memory sources placed after the config files and before the `-hcl`
/// snippets.
pub(crate) fn build_with(
    flags: &AgentFlags,
    extra: Vec<Source>,
) -> Result<RuntimeConfig, ConfigError> {
    let forced = match flags.config_format.as_deref() {
        None | Some("") => None,
        Some(f) => Some(
            Format::from_flag(f)
                .ok_or_else(|| invalid("config: -config-format must be either 'hcl' or 'json'"))?,
        ),
    };
    let mut warnings = Vec::new();
    let mut merged = defaults();
    if flags.dev {
        merge_map(&mut merged, dev_defaults());
    }
    let mut sources: Vec<Source> = Vec::new();
    for path in &flags.config_paths {
        sources.extend(sources_from_path(path, forced, &mut warnings)?);
    }
    let files_loaded: Vec<PathBuf> = sources.iter().map(|s| s.name.clone()).collect();
    sources.extend(extra);
    for (i, snippet) in flags.hcl.iter().enumerate() {
        sources.push(Source {
            name: PathBuf::from(format!("flags-{i}.hcl")),
            format: Format::Hcl,
            data: snippet.clone(),
        });
    }
    let mut services = Vec::new();
    let mut checks = Vec::new();
    let mut layers = Vec::new();
    for src in &sources {
        if let Some(map) = parse_source(src)? {
            layers.push((src.name.clone(), map));
        }
    }
    let flag_source = PathBuf::from("command-line flags");
    let flag_values = normalize(flags.values.clone()).map_err(|e| match e {
        NormError::UnknownKey(key) => ConfigError::UnknownKey {
            path: flag_source.clone(),
            key,
        },
        NormError::Invalid(message) => ConfigError::Parse {
            path: flag_source.clone(),
            message,
        },
    })?;
    layers.push((flag_source, flag_values));
    for (origin, mut map) in layers {
        apply_deprecations(&mut map, &mut warnings);
        for (key, out) in [("services", &mut services), ("checks", &mut checks)] {
            if let Some(Value::Array(defs)) = map.remove(key) {
                out.extend(defs.into_iter().map(|value| Def {
                    value,
                    origin: origin.clone(),
                }));
            }
        }
        merge_map(&mut merged, map);
    }
    let mut rt = resolve(&merged, flags, &mut warnings)?;
    validate_services(&services)?;
    validate_checks(&checks)?;
    rt.services = services.into_iter().map(|d| d.value).collect();
    rt.checks = checks.into_iter().map(|d| d.value).collect();
    merged.insert("services".into(), Value::Array(rt.services.clone()));
    merged.insert("checks".into(), Value::Array(rt.checks.clone()));
    rt.raw = merged;
    rt.config_files_loaded = files_loaded;
    rt.warnings = warnings;
    rt.flags = flags.clone();
    Ok(rt)
}

/// Typed, read-only view of the merged configuration.
struct View<'a>(&'a Map<String, Value>);

impl<'a> View<'a> {
    fn get(&self, path: &str) -> Option<&'a Value> {
        let mut parts = path.split('.');
        let mut cur = self.0.get(parts.next()?)?;
        for p in parts {
            cur = cur.as_object()?.get(p)?;
        }
        Some(cur)
    }
    fn str(&self, path: &str) -> Option<&'a str> {
        self.get(path).and_then(Value::as_str)
    }
    /// A string that is set and non-empty.
    fn opt(&self, path: &str) -> Option<String> {
        self.str(path).filter(|s| !s.is_empty()).map(str::to_string)
    }
    fn bool(&self, path: &str) -> Option<bool> {
        self.get(path).and_then(Value::as_bool)
    }
    fn int(&self, path: &str) -> Option<i64> {
        self.get(path).and_then(Value::as_i64)
    }
    fn list(&self, path: &str) -> Vec<String> {
        self.get(path)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
    fn string_map(&self, path: &str) -> BTreeMap<String, String> {
        self.get(path)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }
    fn object(&self, path: &str) -> Value {
        self.get(path)
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()))
    }
    fn duration(&self, path: &str) -> Result<Duration, ConfigError> {
        match self.str(path) {
            None => Ok(Duration::ZERO),
            Some(s) => parse_duration(s)
                .map_err(|e| invalid(format!("{path}: invalid duration: {s:?}: {e}"))),
        }
    }
    fn non_negative(&self, path: &str) -> Result<u32, ConfigError> {
        let v = self.int(path).unwrap_or(0);
        u32::try_from(v).map_err(|_| {
            invalid(format!(
                "{path} cannot be {v}. Must be greater than or equal to zero"
            ))
        })
    }
    fn port(&self, name: &str) -> Result<i32, ConfigError> {
        let path = format!("ports.{name}");
        match self.int(&path) {
            None => Ok(-1),
            Some(p) if p < 0 => Ok(-1),
            Some(p) if p > 65535 => Err(invalid(format!("{path}: invalid port: {p}"))),
            Some(p) => Ok(p as i32),
        }
    }
}

/// Resolves typed fields and validates the agent-level settings.
fn resolve(
    merged: &Map<String, Value>,
    flags: &AgentFlags,
    warnings: &mut Vec<String>,
) -> Result<RuntimeConfig, ConfigError> {
    let v = View(merged);
    let dev = flags.dev;

    if let Some(p) = v.int("raft_protocol") {
        if p != 3 {
            return Err(invalid(format!(
                "raft_protocol version {p} is not supported by this version of Praetor"
            )));
        }
    }
    let datacenter = v.str("datacenter").unwrap_or("dc1").to_lowercase();
    validate_basic_name("datacenter", &datacenter, false)?;
    let primary_datacenter = match v.str("primary_datacenter").map(str::to_lowercase) {
        Some(p) if !p.is_empty() => {
            validate_basic_name("primary_datacenter", &p, true)?;
            p
        }
        _ => datacenter.clone(),
    };

    let data_dir = v.opt("data_dir").map(PathBuf::from);
    match &data_dir {
        None if !dev => return Err(invalid("data_dir cannot be empty")),
        Some(d) if d.exists() && !d.is_dir() => {
            return Err(invalid(format!(
                "data_dir {:?} is not a directory",
                d.display().to_string()
            )))
        }
        _ => {}
    }

    let node_name = match v.str("node_name").map(str::trim) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => hostname().unwrap_or_default(),
    };
    if node_name.is_empty() {
        return Err(invalid("node_name cannot be empty"));
    }
    if !node_name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        warnings.push(format!(
            "Node name {node_name:?} will not be discoverable via DNS due to invalid characters. Valid characters include all alpha-numerics and dashes."
        ));
    } else if node_name.len() > 63 {
        warnings.push(format!(
            "Node name {node_name:?} will not be discoverable via DNS due to it being too long. Valid lengths are between 1 and 63 bytes."
        ));
    }
    let node_id = match v.opt("node_id") {
        Some(id) => Some(validate_node_id(&id)?),
        None => None,
    };

    let server = v.bool("server").unwrap_or(false);
    let mut bootstrap = v.bool("bootstrap").unwrap_or(false);
    let mut bootstrap_expect = v.int("bootstrap_expect").unwrap_or(0);
    if bootstrap_expect < 0 {
        return Err(invalid(format!(
            "bootstrap_expect cannot be {bootstrap_expect}. Must be greater than or equal to zero"
        )));
    }
    if bootstrap_expect == 1 {
        bootstrap = true;
        bootstrap_expect = 0;
        warnings.push("BootstrapExpect is set to 1; this is the same as Bootstrap mode.".into());
    }
    if bootstrap && !server {
        return Err(invalid("'bootstrap = true' requires 'server = true'"));
    }
    if bootstrap_expect > 0 && !server {
        return Err(invalid("'bootstrap_expect > 0' requires 'server = true'"));
    }
    if bootstrap_expect > 0 && dev {
        return Err(invalid("'bootstrap_expect > 0' not allowed in dev mode"));
    }
    if bootstrap_expect > 0 && bootstrap {
        return Err(invalid(
            "'bootstrap_expect > 0' and 'bootstrap = true' are mutually exclusive",
        ));
    }
    if server && !dev && bootstrap_expect == 2 {
        warnings.push("bootstrap_expect = 2: A cluster with 2 servers will provide no failure tolerance. See https://www.consul.io/docs/internals/consensus.html#deployment-table".into());
    } else if server && bootstrap_expect > 2 && bootstrap_expect % 2 == 0 {
        warnings.push("bootstrap_expect is even number: A cluster with an even number of servers does not achieve optimum fault tolerance. See https://www.consul.io/docs/internals/consensus.html#deployment-table".into());
    }
    if server && bootstrap {
        warnings.push("bootstrap = true: do not enable unless necessary".into());
    }

    let bind_addr = v.str("bind_addr").unwrap_or("0.0.0.0").trim().to_string();
    validate_bind_addr(&bind_addr)?;
    let advertise_addr = v.opt("advertise_addr");
    let advertise_addr_wan = v.opt("advertise_addr_wan");
    for (name, addr, what) in [
        ("advertise_addr", &advertise_addr, "Advertise address"),
        (
            "advertise_addr_wan",
            &advertise_addr_wan,
            "Advertise WAN address",
        ),
    ] {
        if let Some(a) = addr {
            let ip = parse_ip(name, a)?;
            if ip.is_unspecified() {
                return Err(invalid(format!("{what} cannot be 0.0.0.0, :: or [::]")));
            }
        }
    }
    let serf_lan_bind = v.opt("serf_lan");
    let serf_wan_bind = v.opt("serf_wan");
    for (name, addr) in [("serf_lan", &serf_lan_bind), ("serf_wan", &serf_wan_bind)] {
        if let Some(a) = addr {
            parse_ip(name, a)?;
        }
    }
    let client_addr = v.str("client_addr").unwrap_or("").trim().to_string();
    validate_addr_list("client_addr", &client_addr)?;
    if client_addr.is_empty() {
        warnings.push("client_addr is empty, client services (DNS, HTTP, HTTPS, GRPC) will not be listening for connections".into());
    }
    let addresses = Addresses {
        http: v.opt("addresses.http"),
        https: v.opt("addresses.https"),
        dns: v.opt("addresses.dns"),
        grpc: v.opt("addresses.grpc"),
    };
    for (name, a) in [
        ("addresses.http", &addresses.http),
        ("addresses.https", &addresses.https),
        ("addresses.dns", &addresses.dns),
        ("addresses.grpc", &addresses.grpc),
    ] {
        if let Some(a) = a {
            validate_addr_list(name, a)?;
        }
    }
    if addresses
        .dns
        .as_deref()
        .is_some_and(|a| a.contains("unix://"))
    {
        return Err(invalid("DNS address cannot be a unix socket"));
    }
    let ports = Ports {
        http: v.port("http")?,
        https: v.port("https")?,
        dns: v.port("dns")?,
        server: v.port("server")?,
        serf_lan: v.port("serf_lan")?,
        serf_wan: v.port("serf_wan")?,
        grpc: v.port("grpc")?,
        grpc_tls: v.port("grpc_tls")?,
    };
    for (min, max) in [
        ("proxy", "proxy"),
        ("sidecar", "sidecar"),
        ("expose", "expose"),
    ] {
        let lo = v.port(&format!("{min}_min_port"))?;
        let hi = v.port(&format!("{max}_max_port"))?;
        if hi < lo {
            return Err(invalid(format!(
                "{min}_min_port must be less than {max}_max_port. To disable, set both to zero."
            )));
        }
    }

    let mut recursors: Vec<String> = Vec::new();
    for r in v.list("recursors") {
        for addr in r.split_whitespace() {
            if addr.starts_with("unix://") {
                return Err(invalid(format!(
                    "DNS Recursors cannot be unix sockets: {addr}"
                )));
            }
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if ["0.0.0.0", "::", ""].contains(&host) {
                return Err(invalid(
                    "DNS recursor address cannot be 0.0.0.0, :: or [::]",
                ));
            }
            if !recursors.iter().any(|x| x == addr) {
                recursors.push(addr.to_string());
            }
        }
    }

    let alt_domain = v.opt("alt_domain");
    if let Some(alt) = &alt_domain {
        let first = alt.split('.').next().unwrap_or("");
        let reserved = ["service", "connect", "node", "query", "addr"];
        if alt.contains('.') && (reserved.contains(&first) || first == datacenter) {
            return Err(invalid(format!(
                "alt_domain cannot start with {{service,connect,node,query,addr,{datacenter}}}"
            )));
        }
    }

    let node_meta = v.string_map("node_meta");
    validate_node_meta(&node_meta).map_err(|e| invalid(format!("node_meta invalid: {e}")))?;
    let encrypt = v.opt("encrypt");
    if let Some(key) = &encrypt {
        validate_encrypt_key(key).map_err(|e| invalid(format!("encrypt has invalid key: {e}")))?;
    }

    let raft_multiplier = v.int("performance.raft_multiplier").unwrap_or(5);
    if !(1..=10).contains(&raft_multiplier) {
        return Err(invalid(format!(
            "performance.raft_multiplier cannot be {raft_multiplier}. Must be between 1 and 10"
        )));
    }
    for path in ["dns_config.udp_answer_limit", "dns_config.a_record_limit"] {
        if let Some(n) = v.int(path).filter(|n| *n < 0) {
            return Err(invalid(format!(
                "{path} cannot be {n}. Must be greater than or equal to zero"
            )));
        }
    }
    let check_output_max_size = v.int("check_output_max_size").unwrap_or(4096);
    if check_output_max_size < 1 {
        return Err(invalid("check_output_max_size must be positive, to discard check output use the discard_check_output flag"));
    }

    let log_level = normalize_log_level(v.str("log_level").unwrap_or("info"))?;
    let enable_script_checks = v.bool("enable_script_checks").unwrap_or(false);
    let ui_content_path = {
        let p = v
            .str("ui_config.content_path")
            .unwrap_or("/ui/")
            .trim_matches('/');
        if p.is_empty() {
            "/".to_string()
        } else {
            format!("/{p}/")
        }
    };
    let retry_interval = v.str("retry_interval").unwrap_or("30s").to_string();
    let retry_interval_wan = v.str("retry_interval_wan").unwrap_or("30s").to_string();
    v.duration("retry_interval")?;
    v.duration("retry_interval_wan")?;

    let rt = RuntimeConfig {
        datacenter,
        primary_datacenter,
        node_name,
        node_id,
        data_dir,
        dev_mode: dev,
        server,
        bootstrap,
        bootstrap_expect: u32::try_from(bootstrap_expect).unwrap_or(u32::MAX),
        bind_addr,
        advertise_addr,
        advertise_addr_wan,
        serf_lan_bind,
        serf_wan_bind,
        client_addr,
        addresses,
        ports,
        retry_join: v.list("retry_join"),
        retry_join_wan: v.list("retry_join_wan"),
        start_join: v.list("start_join"),
        start_join_wan: v.list("start_join_wan"),
        retry_interval,
        retry_interval_wan,
        retry_max: v.non_negative("retry_max")?,
        retry_max_wan: v.non_negative("retry_max_wan")?,
        rejoin_after_leave: v.bool("rejoin_after_leave").unwrap_or(false),
        log_level,
        log_json: v.bool("log_json").unwrap_or(false),
        log_file: v.opt("log_file").map(PathBuf::from),
        enable_syslog: v.bool("enable_syslog").unwrap_or(false),
        ui_enabled: v.bool("ui_config.enabled").unwrap_or(false),
        ui_dir: v.opt("ui_config.dir").map(PathBuf::from),
        ui_content_path,
        enable_script_checks,
        enable_local_script_checks: v
            .bool("enable_local_script_checks")
            .unwrap_or(enable_script_checks),
        enable_debug: v.bool("enable_debug").unwrap_or(false),
        disable_remote_exec: v.bool("disable_remote_exec").unwrap_or(true),
        disable_update_check: v.bool("disable_update_check").unwrap_or(false),
        disable_host_node_id: v.bool("disable_host_node_id").unwrap_or(true),
        domain: v.str("domain").unwrap_or("consul.").to_string(),
        alt_domain,
        recursors,
        node_meta,
        encrypt,
        dns_config: v.object("dns_config"),
        acl: v.object("acl"),
        tls: v.object("tls"),
        limits: v.object("limits"),
        telemetry: v.object("telemetry"),
        connect: v.object("connect"),
        http_config: v.object("http_config"),
        performance: Performance {
            raft_multiplier: raft_multiplier as u32,
            leave_drain_time: v.duration("performance.leave_drain_time")?,
            rpc_hold_timeout: v.duration("performance.rpc_hold_timeout")?,
        },
        leave_on_terminate: v.bool("leave_on_terminate").unwrap_or(!server),
        skip_leave_on_interrupt: v.bool("skip_leave_on_interrupt").unwrap_or(server),
        default_query_time: v.duration("default_query_time")?,
        max_query_time: v.duration("max_query_time")?,
        check_update_interval: v.duration("check_update_interval")?,
        check_output_max_size: check_output_max_size as usize,
        protocol: v.non_negative("protocol")?,
        raft_protocol: v.non_negative("raft_protocol")?,
        pid_file: v.opt("pid_file").map(PathBuf::from),
        segment: v.opt("segment"),
        watches: v
            .get("watches")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        services: Vec::new(),
        checks: Vec::new(),
        raw: Map::new(),
        config_files_loaded: Vec::new(),
        warnings: Vec::new(),
        flags: AgentFlags::default(),
    };
    validate_listeners(&rt)?;
    Ok(rt)
}
