//! The only module that talks to libc directly: vectored socket writes, the bound-but-not-
//! listening socket that reserves a port for every shard, and resource queries.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// One non-blocking `sendmsg` of as many of `bufs` as the kernel takes (at most `IOV_MAX`).
/// `Ok(None)` means the socket would block.
pub fn try_writev(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<Option<usize>> {
    let n = bufs.len().min(1024);
    // SAFETY: msghdr is plain old data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with iovec on Unix; the kernel only reads them.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = n as _;
    // SAFETY: `msg` points at `n` valid iovecs borrowed for the duration of the call; fd is a
    // socket owned by the caller.
    let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if r >= 0 {
        return Ok(Some(r as usize));
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(None)
    } else {
        Err(e)
    }
}

/// A duplicate of socket `fd` that a blocking thread can write to and close on its own: the
/// socket stays open as long as either descriptor does, so a connection closed meanwhile by
/// its shard can never turn this into a write to some other file that reused the number.
pub fn dup_fd(fd: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`; a non-negative result is a new descriptor
    // that nothing else owns.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `r` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(r) })
}

/// A position in a list of buffers being written in order: the vectored writers' bookkeeping
/// of how far the kernel has taken them. Empty buffers are skipped.
pub struct IoCursor<'s, 'b> {
    bufs: &'s [&'b [u8]],
    i: usize,
    off: usize,
}

impl<'s, 'b> IoCursor<'s, 'b> {
    pub fn new(bufs: &'s [&'b [u8]]) -> Self {
        let mut c = IoCursor { bufs, i: 0, off: 0 };
        c.advance(0);
        c
    }

    /// Whether every byte has been written.
    pub fn done(&self) -> bool {
        self.i == self.bufs.len()
    }

    /// The rest of the current buffer (not empty unless [`done`](IoCursor::done)).
    pub fn current(&self) -> &'b [u8] {
        self.bufs.get(self.i).map_or(&[], |b| &b[self.off..])
    }

    /// Fills `iov` with what is left, up to `IOV_MAX` (1024) slices.
    pub fn iov(&self, iov: &mut Vec<IoSlice<'b>>) {
        iov.clear();
        if self.done() {
            return;
        }
        iov.push(IoSlice::new(self.current()));
        iov.extend(self.bufs[self.i + 1..].iter().filter(|b| !b.is_empty()).take(1023).map(|b| IoSlice::new(b)));
    }

    /// Moves past `n` more bytes written.
    pub fn advance(&mut self, mut n: usize) {
        while self.i < self.bufs.len() {
            let left = self.bufs[self.i].len() - self.off;
            if n < left {
                self.off += n;
                return;
            }
            n -= left;
            self.i += 1;
            self.off = 0;
        }
    }

    /// What is left, as slices.
    pub fn rest(&self) -> Vec<&'b [u8]> {
        if self.done() {
            return Vec::new();
        }
        let mut out = vec![self.current()];
        out.extend(self.bufs[self.i + 1..].iter().filter(|b| !b.is_empty()));
        out
    }
}

/// Writes `bufs` in order to socket `fd` from a thread that may block, waiting in `poll` while
/// the socket is full. Gives up waiting once the socket has had no room for `patience` (a
/// reader that stopped reading must not hold the thread) and returns how many bytes went out;
/// the caller writes the rest its own way.
pub fn send_blocking(fd: RawFd, bufs: &[&[u8]], patience: std::time::Duration) -> io::Result<usize> {
    let wait_ms = patience.as_millis().min(i32::MAX as u128) as libc::c_int;
    let mut done = 0;
    let mut cursor = IoCursor::new(bufs);
    let mut iov = Vec::with_capacity(bufs.len().min(1024));
    while !cursor.done() {
        cursor.iov(&mut iov);
        match try_writev(fd, &iov)? {
            Some(0) => return Err(io::ErrorKind::WriteZero.into()),
            Some(n) => {
                cursor.advance(n);
                done += n;
            }
            None => {
                let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
                // SAFETY: one valid pollfd, borrowed for the call.
                let r = unsafe { libc::poll(&mut p, 1, wait_ms) };
                if r == 0 {
                    return Ok(done);
                }
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
    }
    Ok(done)
}

/// A socket bound to `addr` with SO_REUSEPORT but never listening: it pins the port (when
/// `addr` asks for port 0) while every shard binds its own listener to the same port, and
/// receives no connections itself.
pub struct PortReservation {
    fd: RawFd,
    pub addr: SocketAddr,
}

impl PortReservation {
    /// Reserves `addr` for the shards. Refuses an address some other socket listens on, even
    /// with SO_REUSEPORT: without this check a second gateway started on the same port (a
    /// manual run beside the service) would silently take half of the connections.
    pub fn new(addr: SocketAddr) -> io::Result<PortReservation> {
        if addr.port() != 0 {
            // Any socket listening there answers a connection attempt at once; nothing
            // listening refuses it at once. (A bind without SO_REUSEPORT cannot tell: it also
            // fails on the TIME_WAIT connections a gateway leaves behind when it restarts.)
            let mut probe = addr;
            if probe.ip().is_unspecified() {
                probe.set_ip(if addr.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            if std::net::TcpStream::connect_timeout(&probe, std::time::Duration::from_millis(500)).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{addr} is already in use (another ringgate or Pushgateway listening there?)"),
                ));
            }
        }
        Self::bind(addr)
    }

    /// A socket bound to `addr` with SO_REUSEPORT and SO_REUSEADDR, not listening.
    fn bind(addr: SocketAddr) -> io::Result<PortReservation> {
        let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut guard = PortReservation { fd, addr };
        for opt in [libc::SO_REUSEPORT, libc::SO_REUSEADDR] {
            set_socket_int(fd, opt, 1)?;
        }
        let (storage, len) = sockaddr(&addr);
        // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
        if unsafe { libc::bind(fd, &storage as *const _ as *const libc::sockaddr, len) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: zeroed storage is valid for getsockname to fill.
        let mut out: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut out_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: out/out_len describe a writable buffer large enough for any address.
        if unsafe { libc::getsockname(fd, &mut out as *mut _ as *mut libc::sockaddr, &mut out_len) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let port = if addr.is_ipv4() {
            // SAFETY: the kernel filled a sockaddr_in for an AF_INET socket.
            let sin = unsafe { &*(&out as *const _ as *const libc::sockaddr_in) };
            u16::from_be(sin.sin_port)
        } else {
            // SAFETY: the kernel filled a sockaddr_in6 for an AF_INET6 socket.
            let sin6 = unsafe { &*(&out as *const _ as *const libc::sockaddr_in6) };
            u16::from_be(sin6.sin6_port)
        };
        guard.addr.set_port(port);
        Ok(guard)
    }
}

/// A listening socket on `addr` with SO_REUSEPORT and SO_REUSEADDR, for one shard; with
/// `incoming_cpu`, also SO_INCOMING_CPU set to it (see [`crate::steer`]).
pub fn listen_reuseport(addr: SocketAddr, incoming_cpu: Option<usize>) -> io::Result<RawFd> {
    // Closed by its drop on any error below.
    let sock = PortReservation::bind(addr)?;
    // SAFETY: plain listen(2) on our socket.
    if unsafe { libc::listen(sock.fd, 1024) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if let Some(cpu) = incoming_cpu {
        set_incoming_cpu(sock.fd, cpu as i32)?;
    }
    let fd = sock.fd;
    std::mem::forget(sock);
    Ok(fd)
}

/// Sets the `int` socket option `opt` (level SOL_SOCKET) of `fd` to `v`.
fn set_socket_int(fd: RawFd, opt: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: `v` outlives the call and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            &v as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as _,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// SO_INCOMING_CPU (asm-generic/socket.h; the libc crate does not export it for x86).
const SO_INCOMING_CPU: libc::c_int = 49;

/// Sets SO_INCOMING_CPU on socket `fd`; -1 clears it.
pub fn set_incoming_cpu(fd: RawFd, cpu: i32) -> io::Result<()> {
    set_socket_int(fd, SO_INCOMING_CPU, cpu)
}

/// The one CPU this thread may run on, if its affinity mask holds exactly one.
pub fn pinned_cpu() -> Option<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set for the kernel to fill.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is writable and its size is passed; 0 is the calling thread.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return None;
    }
    let mut only = None;
    for cpu in 0..libc::CPU_SETSIZE as usize {
        // SAFETY: cpu < CPU_SETSIZE.
        if unsafe { libc::CPU_ISSET(cpu, &set) } {
            if only.is_some() {
                return None;
            }
            only = Some(cpu);
        }
    }
    only
}

impl Drop for PortReservation {
    fn drop(&mut self) {
        // SAFETY: we own fd and close it once.
        unsafe { libc::close(self.fd) };
    }
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: zeroed sockaddr_storage is a valid (unspecified) address.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as _;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as _;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Resident set size of this process in bytes, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else { return 0 };
    let pages: u64 = s.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    pages * page
}

/// The RLIMIT_MEMLOCK soft limit in bytes (`u64::MAX` when unlimited).
pub fn memlock_limit() -> u64 {
    // SAFETY: zeroed rlimit is valid for getrlimit to fill.
    let mut r: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `r` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return 0;
    }
    if r.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        r.rlim_cur as u64
    }
}

fn term_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks SIGTERM and SIGINT in this thread and every thread it starts afterwards, so that
/// [`wait_signal`] receives them instead of the default action killing the process.
pub fn block_term_signals() {
    let set = term_signals();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Waits up to `timeout` for SIGTERM or SIGINT; returns the signal number.
pub fn wait_signal(timeout: std::time::Duration) -> Option<i32> {
    let set = term_signals();
    let ts = libc::timespec { tv_sec: timeout.as_secs() as _, tv_nsec: timeout.subsec_nanos() as _ };
    // SAFETY: `set` and `ts` are valid for the call; no siginfo is requested.
    let r = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    (r > 0).then_some(r)
}

/// Large byte buffers kept for reuse, up to a number of bytes: the request bodies and rendered
/// groups of pushes are hundreds of KB each, mapped on their own (see [`tune_allocator`]), and
/// a fresh one per push is a new mapping whose every page faults and is zeroed before it is
/// first written (about 1.4 µs a page on this kind of VM). A push cycle replaces groups of the
/// same sizes, so a kept buffer mostly fits the next push as it is.
#[derive(Debug, Default)]
pub struct BufPool {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
    max: usize,
}

impl BufPool {
    pub const fn new(max: usize) -> BufPool {
        BufPool { bufs: Vec::new(), bytes: 0, max }
    }

    /// Changes the limit, letting go of the smallest buffers until the pool is within it.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
        while self.bytes > self.max {
            self.evict_smallest();
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Bytes of capacity held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.bufs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// The kept buffer with the least capacity of at least `least` bytes, if any, leaving the
    /// larger ones for larger requests. Its contents are whatever it last held.
    pub fn take(&mut self, least: usize) -> Option<Vec<u8>> {
        let bufs = &self.bufs;
        let i = (0..bufs.len()).filter(|&i| bufs[i].capacity() >= least).min_by_key(|&i| bufs[i].capacity())?;
        let v = self.bufs.swap_remove(i);
        self.bytes -= v.capacity();
        Some(v)
    }

    /// Keeps `v` if the limit allows, letting go of smaller kept buffers to make room (a
    /// larger buffer serves small requests too); else returns it.
    pub fn give(&mut self, v: Vec<u8>) -> Result<(), Vec<u8>> {
        let cap = v.capacity();
        if cap > self.max {
            return Err(v);
        }
        while self.bytes + cap > self.max {
            let smallest = self.bufs.iter().map(|b| b.capacity()).min();
            if smallest.map_or(true, |c| c >= cap) {
                return Err(v);
            }
            self.evict_smallest();
        }
        self.bytes += cap;
        self.bufs.push(v);
        Ok(())
    }

    fn evict_smallest(&mut self) {
        let bufs = &self.bufs;
        if let Some(i) = (0..bufs.len()).min_by_key(|&i| bufs[i].capacity()) {
            let v = self.bufs.swap_remove(i);
            self.bytes -= v.capacity();
        }
    }
}

/// Fixes glibc's mmap threshold at 128 KiB. By default glibc raises the threshold each time a
/// large mmapped block is freed, after which request bodies and rendered groups (hundreds of
/// KiB, replaced every push cycle) come from the heap arenas, where freed memory fragments and
/// stays resident. With a fixed threshold they are mapped and unmapped whole.
pub fn tune_allocator() {
    // SAFETY: mallopt only adjusts allocator parameters; called before other threads start.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
}

/// Returns the heap's free pages to the kernel (`malloc_trim(0)`: every arena, not only the
/// top of the main heap). Returns the fall in resident set size across the call, which other
/// threads allocating at the same time can hide.
pub fn trim_heap() -> u64 {
    let before = rss_bytes();
    // SAFETY: malloc_trim only releases free memory the allocator owns; it takes the arena
    // locks itself and is safe to call from any thread.
    unsafe { libc::malloc_trim(0) };
    before.saturating_sub(rss_bytes())
}

/// Asks the processor to bring `p`'s cache line in, for a loop that will read it a little
/// later (see `scrape::Assembled::gzip_body`): a hint, which never faults, whatever the
/// address.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only loads a cache line if the address is mapped; it neither faults
    // nor has any other effect, for any address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p as *const i8, core::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Lowers the scheduling priority of the calling thread (nice 10), once per thread. The
/// blocking threads that gzip scrapes and write snapshots call it, so that on a busy machine
/// the shard executors, which answer pushes, get the CPU first: a scrape may take a little
/// longer, a push is not held up behind a compressor.
pub fn lower_thread_priority() {
    thread_local! { static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) }; }
    DONE.with(|d| {
        if !d.replace(true) {
            // SAFETY: gettid has no preconditions; setpriority on our own thread id only
            // changes this thread's nice value (Linux per-thread semantics).
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 10);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::BufPool;
    use std::io;
    use std::os::fd::RawFd;

    /// SO_INCOMING_CPU of socket `fd` (-1 when unset).
    fn incoming_cpu(fd: RawFd) -> io::Result<i32> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `v` and `len` describe a writable int.
        if unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                super::SO_INCOMING_CPU,
                &mut v as *mut _ as *mut libc::c_void,
                &mut len,
            )
        } < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(v)
    }

    #[test]
    fn a_steering_listener_asks_for_its_cpu_until_cleared() {
        let addr = "127.0.0.1:0".parse().unwrap();
        let fd = super::listen_reuseport(addr, Some(0)).expect("listen");
        assert_eq!(incoming_cpu(fd).unwrap(), 0);
        super::set_incoming_cpu(fd, -1).unwrap();
        assert_eq!(incoming_cpu(fd).unwrap(), -1);
        let plain = super::listen_reuseport(addr, None).expect("listen");
        assert_eq!(incoming_cpu(plain).unwrap(), -1);
        // SAFETY: both descriptors are ours, closed once.
        unsafe {
            libc::close(fd);
            libc::close(plain);
        }
    }

    fn caps(p: &mut BufPool) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some(v) = p.take(0) {
            out.push(v.capacity());
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn a_pool_hands_out_the_smallest_fitting_buffer_and_keeps_within_its_bytes() {
        let mut p = BufPool::new(1000);
        for c in [100, 300, 200] {
            p.give(Vec::with_capacity(c)).unwrap();
        }
        assert_eq!((p.len(), p.bytes()), (3, 600));
        assert_eq!(p.take(150).map(|v| v.capacity()), Some(200));
        assert!(p.take(301).is_none(), "nothing that large");
        assert_eq!(p.bytes(), 400);
        // Room is made by letting go of smaller buffers only.
        p.give(Vec::with_capacity(500)).unwrap();
        assert_eq!(p.bytes(), 900);
        p.give(Vec::with_capacity(200)).unwrap();
        assert_eq!(caps(&mut p), [200, 300, 500]);
        for c in [400, 500] {
            p.give(Vec::with_capacity(c)).unwrap();
        }
        let refused = p.give(Vec::with_capacity(300)).unwrap_err();
        assert_eq!(refused.capacity(), 300, "not larger than what it would push out");
        assert!(p.give(Vec::with_capacity(1001)).is_err(), "larger than the pool");
        // A lower limit lets go of the smallest first; 0 keeps nothing.
        p.set_max(600);
        assert_eq!(caps(&mut p), [500]);
        p.set_max(0);
        assert!(p.give(Vec::with_capacity(1)).is_err());
        assert_eq!((p.len(), p.bytes()), (0, 0));
    }

    #[test]
    fn a_cursor_skips_empty_buffers_and_gives_what_is_left() {
        let bufs: [&[u8]; 5] = [b"", b"ab", b"", b"cde", b""];
        let mut c = super::IoCursor::new(&bufs);
        assert_eq!((c.done(), c.current()), (false, &b"ab"[..]));
        let mut iov = Vec::new();
        c.iov(&mut iov);
        assert_eq!(iov.len(), 2);
        c.advance(3);
        assert_eq!(c.rest(), [&b"de"[..]]);
        c.advance(2);
        assert!(c.done() && c.rest().is_empty() && c.current().is_empty());
        assert!(super::IoCursor::new(&[b"", b""]).done());
    }

    /// A connected pair of non-blocking stream sockets, as the gateway's connections are.
    fn socket_pair() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
        use std::os::fd::FromRawFd;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors socketpair writes.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0, "socketpair: {}", io::Error::last_os_error());
        // SAFETY: both were just made and are owned by nothing else.
        unsafe { (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) }
    }

    #[test]
    fn a_blocking_send_stops_waiting_for_a_reader_that_stalls_and_says_how_far_it_got() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        use std::time::{Duration, Instant};
        let (ours, theirs) = socket_pair();
        let a: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let b = vec![7u8; 5_000_000];
        let bufs: [&[u8]; 4] = [b"head", &a, &[], &b];
        let total = 4 + a.len() + b.len();
        // Nobody reads: the socket fills, and after the patience the thread gives up.
        let dup = super::dup_fd(ours.as_raw_fd()).unwrap();
        let t = Instant::now();
        let sent = super::send_blocking(dup.as_raw_fd(), &bufs, Duration::from_millis(200)).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(200));
        assert!(sent > 0 && sent < total, "sent {sent} of {total}");
        // A reader that keeps reading gets everything, in order: what the blocking send took,
        // then the rest from where it stopped.
        let all: Vec<u8> = bufs.concat();
        let reader = std::thread::spawn(move || {
            let mut f = std::fs::File::from(theirs);
            let mut got = Vec::new();
            loop {
                let mut chunk = vec![0u8; 1 << 16];
                match f.read(&mut chunk) {
                    Ok(0) => return got,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                    Err(e) => panic!("read: {e}"),
                }
            }
        });
        let rest: &[u8] = &all[sent..];
        assert_eq!(super::send_blocking(dup.as_raw_fd(), &[rest], Duration::from_secs(10)).unwrap(), rest.len());
        drop((dup, ours));
        assert!(reader.join().unwrap() == all, "the reader got the bytes in order");
        // A peer that is gone is an error, not a wait.
        let (ours, theirs) = socket_pair();
        drop(theirs);
        assert!(super::send_blocking(ours.as_raw_fd(), &[b"x"], Duration::from_secs(10)).is_err());
    }
}
