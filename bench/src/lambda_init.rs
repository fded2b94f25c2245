//! Lambda start-up figures, measured locally: how long a route binary takes from process start
//! to its first `GET /2018-06-01/runtime/invocation/next` (the moment Lambda's init phase ends
//! and the function is ready for an event), and its resident memory at that moment.
//!
//! A stub Runtime API on 127.0.0.1 answers nothing: it only records when the request arrives,
//! reads `VmRSS` from `/proc/<pid>/status`, and ends the process. Each run is a fresh process
//! (a cold start as far as the binary is concerned; the OS page cache is warm after the first).

use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The environment a route binary needs to finish init (names of tables that need not exist:
/// init builds clients, it sends no request).
const ENV: &[(&str, &str)] = &[
    ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "bench"),
    ("AWS_SECRET_ACCESS_KEY", "bench"),
    ("MESSENGER_PRESENCE_TABLE", "presence"),
    ("MESSENGER_MEMBERSHIPS_TABLE", "memberships"),
    ("MESSENGER_MESSAGES_TABLE", "messages"),
    ("MESSENGER_DEVICES_TABLE", "devices"),
    ("MESSENGER_JWT_SECRET", "bench-secret"),
];

/// Longest wait for one init: a hang guard.
const WAIT: Duration = Duration::from_secs(30);

/// One start of a binary.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct InitSample {
    /// Process spawn → first `invocation/next` request line received, in milliseconds.
    pub init_ms: f64,
    /// Resident set size at that moment, in KiB (`VmRSS`).
    pub rss_kib: u64,
}

/// The figures of one binary over several starts.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub binary: String,
    pub size_bytes: u64,
    pub runs: usize,
    pub init_ms_min: f64,
    pub init_ms_median: f64,
    pub init_ms_max: f64,
    pub rss_kib_median: u64,
    pub samples: Vec<InitSample>,
}

fn vm_rss_kib(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| std::io::Error::other("no VmRSS line"))
}

/// Starts `bin` once against a stub Runtime API and measures its init.
pub fn measure_once(bin: &Path) -> std::io::Result<InitSample> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::channel();
    // The stub: accept, read one request line, report when it arrived.
    std::thread::spawn(move || {
        let arrived = (|| {
            let (stream, _) = listener.accept()?;
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line)?;
            // The connection goes back with the time: closing it now would make the runtime
            // exit before its memory is read.
            Ok::<_, std::io::Error>((Instant::now(), line, reader))
        })();
        let _ = tx.send(arrived);
    });
    let started = Instant::now();
    let mut child = Command::new(bin)
        .env_clear()
        .envs(ENV.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = match rx.recv_timeout(WAIT) {
        Ok(Ok((at, line, _open)))
            if line.starts_with("GET /2018-06-01/runtime/invocation/next") =>
        {
            let rss_kib = vm_rss_kib(child.id());
            rss_kib.map(|rss_kib| InitSample {
                init_ms: at.duration_since(started).as_secs_f64() * 1000.0,
                rss_kib,
            })
        }
        Ok(Ok((_, line, _))) => Err(std::io::Error::other(format!(
            "unexpected first request: {line:?}"
        ))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(std::io::Error::other(format!(
            "{} did not ask for an event within {} s (exited: {:?})",
            bin.display(),
            WAIT.as_secs(),
            child.try_wait()
        ))),
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Starts `bin` `runs` times and summarises.
pub fn measure(bin: &Path, runs: usize) -> std::io::Result<InitReport> {
    let samples = (0..runs.max(1))
        .map(|_| measure_once(bin))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut ms: Vec<f64> = samples.iter().map(|s| s.init_ms).collect();
    ms.sort_by(f64::total_cmp);
    let mut rss: Vec<u64> = samples.iter().map(|s| s.rss_kib).collect();
    rss.sort_unstable();
    Ok(InitReport {
        binary: bin.display().to_string(),
        size_bytes: std::fs::metadata(bin)?.len(),
        runs: samples.len(),
        init_ms_min: ms[0],
        init_ms_median: ms[ms.len() / 2],
        init_ms_max: ms[ms.len() - 1],
        rss_kib_median: rss[rss.len() / 2],
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_asks_for_an_event_is_measured() {
        // GIVEN a stand-in "runtime" (bash) that asks for the next event as soon as it starts
        let script = std::env::temp_dir().join(format!("bench-init-{}.sh", std::process::id()));
        std::fs::write(
            &script,
            "#!/bin/bash\nexec 3<>/dev/tcp/${AWS_LAMBDA_RUNTIME_API%:*}/${AWS_LAMBDA_RUNTIME_API#*:}\n\
             printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\n\\r\\n' >&3\nsleep 30\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

        // WHEN it is measured twice
        let report = measure(&script, 2);
        std::fs::remove_file(&script).unwrap();

        // THEN both starts have a time and a resident size
        let report = report.unwrap();
        assert_eq!(report.runs, 2);
        assert!(report.init_ms_min > 0.0 && report.init_ms_max < 30_000.0);
        assert!(report.rss_kib_median > 0);
    }
}
