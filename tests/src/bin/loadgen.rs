//! Load generator for the benchmark suite (`bench/`): one tool drives Praetor and its peers
//! the same way, over plain HTTP/1.1 keep-alive connections, and prints one JSON line per
//! run. Subcommands:
//!
//! * `kv SYSTEM OP ADDRS CONCURRENCY SECONDS [VALUE_SIZE]` — SYSTEM `praetor` (KV API,
//!   reads `?consistent`) or `etcd` (v3 JSON gateway, linearizable reads); OP `write` or
//!   `read`; ADDRS comma-separated `host:port`, connections spread over them.
//! * `get URL_PATH ADDR CONCURRENCY SECONDS` — repeated GETs (latency percentiles).
//! * `watch ADDR N AGENT_PID [h1|h2]` — N blocking queries on one key; reports the agent's
//!   RSS per watcher, how many an unrelated write woke (should be 0) and how long until all
//!   woke after a write to their key. `h1` (default): one HTTP/1.1 connection per watcher;
//!   `h2`: HTTP/2 (prior knowledge), 100 watchers multiplexed per connection.
//! * `catalog ADDR NODES PER_NODE SERVICES CONCURRENCY` — registers NODES nodes with
//!   PER_NODE instances each (of SERVICES service names) through `/v1/txn`.
//! * `ready PRAETOR_BIN ROUNDS` — `agent -dev` start-to-leader time and idle RSS.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
    source: Option<std::net::IpAddr>,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_string(),
            stream: None,
            source: None,
        }
    }

    async fn connect(&mut self) -> Result<(), Error> {
        let target: SocketAddr = tokio::net::lookup_host(&self.addr)
            .await?
            .next()
            .ok_or("no address")?;
        let sock = tokio::net::TcpSocket::new_v4()?;
        if let Some(src) = self.source {
            sock.bind(SocketAddr::new(src, 0))?;
        }
        let s = sock.connect(target).await?;
        s.set_nodelay(true)?;
        self.stream = Some(BufReader::new(s));
        Ok(())
    }

    /// Send a request and read the answer: (status, body).
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), Error> {
        if self.stream.is_none() {
            self.connect().await?;
        }
        let r = self.exchange(method, path, body).await;
        if r.is_err() {
            self.stream = None;
        }
        r
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), Error> {
        let s = self.stream.as_mut().ok_or("not connected")?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        s.get_mut().write_all(&req).await?;
        let mut line = String::new();
        s.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut len = 0usize;
        let mut chunked = false;
        loop {
            line.clear();
            s.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse()?;
                } else if k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked") {
                    chunked = true;
                }
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                s.read_line(&mut line).await?;
                let n = usize::from_str_radix(line.trim(), 16)?;
                let mut chunk = vec![0; n + 2];
                s.read_exact(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
        } else {
            out.resize(len, 0);
            s.read_exact(&mut out).await?;
        }
        Ok((status, out))
    }
}

/// Latencies in microseconds, merged from every worker.
#[derive(Default)]
struct Stats {
    lat: Vec<u64>,
    errors: u64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report(kind: &str, extra: &str, stats: Stats, secs: f64) {
    let mut lat = stats.lat;
    lat.sort_unstable();
    println!(
        "{{\"bench\":\"{kind}\",{extra}\"ops\":{},\"errors\":{},\"secs\":{secs:.2},\"ops_per_sec\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        lat.len(),
        stats.errors,
        lat.len() as f64 / secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
    );
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Run `work` on CONCURRENCY connections for SECONDS; `work(conn, i)` returns whether
/// operation `i` succeeded.
async fn drive<F, Fut>(addrs: &[String], concurrency: usize, secs: f64, work: F) -> Stats
where
    F: Fn(Conn, u64) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = (Conn, bool)> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let all = Arc::new(Mutex::new(Stats::default()));
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (stop, counter, all, work) = (stop.clone(), counter.clone(), all.clone(), work.clone());
        let mut conn = Conn::new(&addrs[w % addrs.len()]);
        tasks.push(tokio::spawn(async move {
            let mut local = Stats::default();
            while !stop.load(Ordering::Relaxed) {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                let (c, ok) = work(conn, i).await;
                conn = c;
                if ok {
                    local.lat.push(t.elapsed().as_micros() as u64);
                } else {
                    local.errors += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            let mut a = all.lock().unwrap();
            a.lat.extend(local.lat);
            a.errors += local.errors;
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let mut a = all.lock().unwrap();
    std::mem::take(&mut *a)
}

async fn kv(args: &[String]) -> Result<(), Error> {
    let [system, op, addrs, conc, secs, rest @ ..] = args else {
        return Err("usage: kv SYSTEM OP ADDRS CONCURRENCY SECONDS [VALUE_SIZE [VIA]]".into());
    };
    let addrs: Vec<String> = addrs.split(',').map(str::to_string).collect();
    let size: usize = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(256);
    // Which servers the clients talk to (`leader`, `follower`; default `all`), for the report.
    let via = rest.get(1).map(String::as_str).unwrap_or("all");
    let value: Arc<Vec<u8>> = Arc::new((0..size).map(|i| b'a' + (i % 26) as u8).collect());
    let keys = 1000u64;
    let (etcd, write) = (system == "etcd", op == "write");
    if !write {
        // Reads need the keys to exist.
        let mut c = Conn::new(&addrs[0]);
        for k in 0..keys {
            let (st, _) = put_key(&mut c, etcd, &format!("bench/{k}"), &value).await?;
            if st != 200 {
                return Err(format!("preloading keys: status {st}").into());
            }
        }
    }
    let stats = drive(&addrs, conc.parse()?, secs.parse()?, move |mut c, i| {
        let value = value.clone();
        async move {
            let key = format!("bench/{}", i % keys);
            let r = if write {
                put_key(&mut c, etcd, &key, &value).await
            } else if etcd {
                let body = format!("{{\"key\":\"{}\"}}", b64(key.as_bytes()));
                c.request("POST", "/v3/kv/range", body.as_bytes()).await
            } else {
                c.request("GET", &format!("/v1/kv/{key}?consistent"), b"")
                    .await
            };
            let ok = matches!(r, Ok((200, _)));
            (c, ok)
        }
    })
    .await;
    report(
        "kv",
        &format!(
            "\"system\":\"{system}\",\"op\":\"{op}\",\"concurrency\":{conc},\"value_size\":{size},\"via\":\"{via}\","
        ),
        stats,
        secs.parse()?,
    );
    Ok(())
}

async fn put_key(
    c: &mut Conn,
    etcd: bool,
    key: &str,
    value: &[u8],
) -> Result<(u16, Vec<u8>), Error> {
    if etcd {
        let body = format!(
            "{{\"key\":\"{}\",\"value\":\"{}\"}}",
            b64(key.as_bytes()),
            b64(value)
        );
        c.request("POST", "/v3/kv/put", body.as_bytes()).await
    } else {
        c.request("PUT", &format!("/v1/kv/{key}"), value).await
    }
}

async fn get(args: &[String]) -> Result<(), Error> {
    let [path, addr, conc, secs] = args else {
        return Err("usage: get URL_PATH ADDR CONCURRENCY SECONDS".into());
    };
    let path = Arc::new(path.clone());
    let p2 = path.clone();
    let stats = drive(
        std::slice::from_ref(addr),
        conc.parse()?,
        secs.parse()?,
        move |mut c, _| {
            let path = p2.clone();
            async move {
                let ok = matches!(c.request("GET", &path, b"").await, Ok((200, _)));
                (c, ok)
            }
        },
    )
    .await;
    report(
        "get",
        &format!("\"path\":\"{path}\",\"concurrency\":{conc},"),
        stats,
        secs.parse()?,
    );
    Ok(())
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn watch(args: &[String]) -> Result<(), Error> {
    let (addr, n, pid, h2) = match args {
        [addr, n, pid] => (addr, n, pid, false),
        [addr, n, pid, mode] => (addr, n, pid, mode == "h2"),
        _ => return Err("usage: watch ADDR N AGENT_PID [h1|h2]".into()),
    };
    let n: usize = n.parse()?;
    let mut c = Conn::new(addr);
    c.request("PUT", "/v1/kv/watched", b"0").await?;
    let (_, body) = c.request("GET", "/v1/kv/watched", b"").await?;
    let text = String::from_utf8_lossy(&body);
    let index: u64 = text
        .split("\"ModifyIndex\":")
        .nth(1)
        .and_then(|r| r.split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|d| d.parse().ok())
        .ok_or("no ModifyIndex")?;
    let rss_before = rss_kib(pid);
    let woke = Arc::new(AtomicU64::new(0));
    let last_wake = Arc::new(Mutex::new(None::<Instant>));
    let mut tasks = Vec::with_capacity(n);
    let sent = Arc::new(AtomicU64::new(0));
    let h2_clients: Vec<reqwest::Client> = if h2 {
        (0..n.div_ceil(100))
            .map(|c| {
                // Spread the connections over source addresses: the agent limits
                // connections per client IP (`http_max_conns_per_client`, 200).
                reqwest::Client::builder()
                    .local_address(std::net::IpAddr::from([127, 0, 1, 2 + (c % 200) as u8]))
                    .http2_prior_knowledge()
                    .timeout(Duration::from_secs(400))
                    .build()
            })
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    for i in 0..n {
        if h2 {
            let client = h2_clients[i / 100].clone();
            let url = format!("http://{addr}/v1/kv/watched?index={index}&wait=5m");
            let (woke, last_wake, sent) = (woke.clone(), last_wake.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                let req = client.get(&url).send();
                sent.fetch_add(1, Ordering::Relaxed);
                let r = req.await.map_err(|e| -> Error { e.into() });
                woke.fetch_add(1, Ordering::Relaxed);
                *last_wake.lock().unwrap() = Some(Instant::now());
                r.map(|_| ())
            }));
            if i % 1000 == 999 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            continue;
        }
        let mut conn = Conn::new(addr);
        // Spread over source addresses: one source has ~28k ephemeral ports.
        conn.source = Some(std::net::IpAddr::from([
            127,
            0,
            (i / 20_000) as u8,
            2 + (i % 200) as u8,
        ]));
        let (woke, last_wake, sent) = (woke.clone(), last_wake.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let path = format!("/v1/kv/watched?index={index}&wait=5m");
            conn.connect().await?;
            sent.fetch_add(1, Ordering::Relaxed);
            let r = conn.request("GET", &path, b"").await;
            woke.fetch_add(1, Ordering::Relaxed);
            *last_wake.lock().unwrap() = Some(Instant::now());
            r.map(|_| ())
        }));
        if i % 1000 == 999 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Let every request reach the agent.
    let t0 = Instant::now();
    while (sent.load(Ordering::Relaxed) as usize) < n && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_kib(pid);
    let connected = sent.load(Ordering::Relaxed);
    c.request("PUT", "/v1/kv/unrelated", b"x").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let woken_by_unrelated = woke.load(Ordering::Relaxed);
    let t = Instant::now();
    c.request("PUT", "/v1/kv/watched", b"1").await?;
    while (woke.load(Ordering::Relaxed) as usize) < n && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all_woke_ms = last_wake
        .lock()
        .unwrap()
        .map(|l| l.saturating_duration_since(t).as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN);
    let mut errors = 0;
    for task in tasks {
        if !matches!(task.await, Ok(Ok(()))) {
            errors += 1;
        }
    }
    println!(
        "{{\"bench\":\"watch\",\"http\":\"{}\",\"watchers\":{n},\"connected\":{connected},\"rss_before_kib\":{rss_before},\"rss_after_kib\":{rss_after},\"bytes_per_watcher\":{:.0},\"woken_by_unrelated_write\":{woken_by_unrelated},\"woken\":{},\"all_woken_ms\":{all_woke_ms:.1},\"errors\":{errors}}}",
        if h2 { "h2" } else { "h1" },
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / n as f64,
        woke.load(Ordering::Relaxed),
    );
    Ok(())
}

async fn catalog(args: &[String]) -> Result<(), Error> {
    let [addr, nodes, per_node, services, conc] = args else {
        return Err("usage: catalog ADDR NODES PER_NODE SERVICES CONCURRENCY".into());
    };
    let (nodes, per_node, services): (u64, u64, u64) =
        (nodes.parse()?, per_node.parse()?, services.parse()?);
    // One transaction per node: the node and its instances (at most 64 ops).
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc.parse::<usize>()? {
        let (next, errors, addr) = (next.clone(), errors.clone(), addr.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::new(&addr);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= nodes {
                    break;
                }
                let node = format!("node-{n}");
                let ip = format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255);
                let mut ops = vec![format!(
                    "{{\"Node\":{{\"Verb\":\"set\",\"Node\":{{\"Node\":\"{node}\",\"Address\":\"{ip}\"}}}}}}"
                )];
                for j in 0..per_node {
                    let svc = (n * per_node + j) % services;
                    ops.push(format!(
                        "{{\"Service\":{{\"Verb\":\"set\",\"Node\":\"{node}\",\"Service\":{{\"ID\":\"svc-{svc}-{j}\",\"Service\":\"svc-{svc}\",\"Port\":{}}}}}}}",
                        8000 + j
                    ));
                }
                let body = format!("[{}]", ops.join(","));
                if !matches!(c.request("PUT", "/v1/txn", body.as_bytes()).await, Ok((200, _))) {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{{\"bench\":\"catalog\",\"nodes\":{nodes},\"instances\":{},\"services\":{services},\"secs\":{secs:.1},\"nodes_per_sec\":{:.0},\"errors\":{}}}",
        nodes * per_node,
        nodes as f64 / secs,
        errors.load(Ordering::Relaxed)
    );
    Ok(())
}

async fn ready(args: &[String]) -> Result<(), Error> {
    let [bin, rounds] = args else {
        return Err("usage: ready PRAETOR_BIN ROUNDS".into());
    };
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for r in 0..rounds.parse::<u32>()? {
        let port = 28_500 + r as u16;
        let t = Instant::now();
        let mut child = std::process::Command::new(bin)
            .args([
                "agent",
                "-dev",
                "-dns-port=-1",
                "-serf-lan-port=0",
                "-serf-wan-port=0",
                "-server-port=0",
            ])
            .arg(format!("-http-port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let addr = format!("127.0.0.1:{port}");
        let elapsed = loop {
            let mut c = Conn::new(&addr);
            if let Ok((200, body)) = c.request("GET", "/v1/status/leader", b"").await {
                if body.len() > 2 {
                    break t.elapsed();
                }
            }
            if t.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                return Err("agent -dev did not become ready".into());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        times.push(elapsed.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_secs(5)).await;
        rss.push(rss_kib(&child.id().to_string()));
        // SIGTERM lets the dev agent remove its temporary data directory.
        let _ = std::process::Command::new("kill")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }
    times.sort_by(f64::total_cmp);
    rss.sort_unstable();
    println!(
        "{{\"bench\":\"ready\",\"rounds\":{},\"ready_ms_median\":{:.1},\"ready_ms_all\":{times:?},\"idle_rss_kib_median\":{}}}",
        times.len(),
        times[times.len() / 2],
        rss[rss.len() / 2]
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let r = rt.block_on(async {
        match args.first().map(String::as_str) {
            Some("kv") => kv(&args[1..]).await,
            Some("get") => get(&args[1..]).await,
            Some("watch") => watch(&args[1..]).await,
            Some("catalog") => catalog(&args[1..]).await,
            Some("ready") => ready(&args[1..]).await,
            _ => Err("usage: loadgen kv|get|watch|catalog|ready ...".into()),
        }
    });
    let _ = std::io::stdout().flush();
    if let Err(e) = r {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::b64(b""), "");
        assert_eq!(super::b64(b"f"), "Zg==");
        assert_eq!(super::b64(b"fo"), "Zm8=");
        assert_eq!(super::b64(b"foobar"), "Zm9vYmFy");
    }
}
