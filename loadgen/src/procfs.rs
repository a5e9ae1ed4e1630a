//! Sampling another process's memory and CPU time from /proc (Linux only).

use std::fs;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcSample {
    /// Resident set size now (VmRSS), bytes.
    pub rss_bytes: u64,
    /// High-water mark of the RSS over the process's life (VmHWM), bytes.
    pub hwm_bytes: u64,
    /// utime + stime, seconds.
    pub cpu_seconds: f64,
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Reads /proc/PID/status and /proc/PID/stat; None when the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut s = parse_status(&status);
    s.cpu_seconds = parse_stat_ticks(&stat)? as f64 / clk_tck();
    Some(s)
}

pub fn parse_status(status: &str) -> ProcSample {
    let mut s = ProcSample::default();
    for line in status.lines() {
        let kb =
            |l: &str| -> u64 { l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 1024 };
        if line.starts_with("VmRSS:") {
            s.rss_bytes = kb(line);
        } else if line.starts_with("VmHWM:") {
            s.hwm_bytes = kb(line);
        }
    }
    s
}

/// utime + stime in clock ticks. Fields are counted after the `)` that closes the command
/// name, since the name itself may contain spaces or parentheses.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1000 100000 500 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(300));
        let st = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        let s = parse_status(st);
        assert_eq!(s.rss_bytes, 1024 * 1024);
        assert_eq!(s.hwm_bytes, 2048 * 1024);
    }

    #[test]
    fn samples_self() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_bytes > 0);
        assert!(s.hwm_bytes >= s.rss_bytes);
    }
}
