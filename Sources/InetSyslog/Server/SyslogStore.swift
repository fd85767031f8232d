#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Where received messages go: JSON lines appended to `<directory>/syslog-YYYY-MM-DD.jsonl`
/// (the UTC day they arrived), by one thread of the store's own, never on an event loop. The
/// event loops only read and frame; that thread parses each message, encodes its record and
/// writes (as rsyslog's reader hands messages to its queue's worker), so the two cores share
/// the work.
/// A day's file past `rotate_bytes` is renamed `syslog-YYYY-MM-DD.N.jsonl` and a new one begun;
/// the oldest files go when all of them would pass `max_total_bytes`. Lines wait in memory
/// up to `max_pending_bytes`: past that, UDP messages are dropped (counted and logged) and
/// TCP connections stop being read until the thread has caught up, so nothing a TCP sender
/// delivered is dropped. Several processes (worker generations during a reload) may append
/// to the same files: each write is whole lines with O_APPEND, and rotation is under a lock file.
public final class SyslogStore: Sendable {
    public struct Settings: Sendable, Equatable {
        public var directory: String
        public var rotateBytes = 64 << 20
        public var maximumTotalBytes = 1 << 30
        public var maximumPendingBytes = 4 << 20

        public init(directory: String) {
            self.directory = directory
        }
    }

    /// One message as received, not yet parsed.
    public struct Message: Sendable {
        /// The message's bytes (at most `max_message_size`).
        public var bytes: [UInt8]
        /// Its length as sent (more than `bytes` when truncated).
        public var length: Int
        public var incomplete: Bool
        public var seconds: Int
        public var nanoseconds: Int
        public var peer: Peer
        public var tcp: Bool
        /// Where the message's `syslog.message` event goes, once parsed (nil: nowhere).
        public var events: EventTarget?

        public enum Peer: Sendable {
            /// A TCP connection's, formatted once for the connection.
            case text(String)
            /// A datagram's source, formatted on the store's thread.
            case address(SocketAddress)
        }

        public init(bytes: [UInt8], length: Int, incomplete: Bool = false, peer: Peer, tcp: Bool) {
            self.bytes = bytes
            self.length = length
            self.incomplete = incomplete
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            seconds = Int(now.tv_sec)
            nanoseconds = Int(now.tv_nsec)
            self.peer = peer
            self.tcp = tcp
        }

        /// Where a message's event is emitted: a datagram's through the service's events (with
        /// the socket it came to), a TCP sender's as an event of its connection.
        public enum EventTarget: Sendable {
            case datagram(HostEvents, any Channel)
            case connection(ConnectionEvents)
        }

        /// What a queued message is reckoned to cost in memory.
        var cost: Int { bytes.count + 96 }
    }

    public enum Admission: Sendable, Equatable {
        /// Taken.
        case stored
        /// Taken, but the store is full: a TCP sender should wait (`whenDrained`).
        case storedButFull
        /// Not taken (UDP, the store full).
        case dropped
    }

    struct State {
        var settings: Settings
        var pending: [Message] = []
        /// Bytes taken and not yet written (pending plus the batch being written).
        var queued = 0
        var writing = false
        var waiters: [@Sendable () -> Void] = []
        var dropped = 0
        var droppedReported = 0
        var lastReport = NIODeadline.distantPast
        var started = false
        var stored = 0
    }

    private let state: NIOLockedValueBox<State>
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let files: StoreFiles
    let logger = Logger(label: "inetkit.syslog")

    private static let registry = NIOLockedValueBox<[String: SyslogStore]>([:])

    /// The process's store for `settings.directory` (one writer per folder and process, shared
    /// by the service's generations across reloads), with these settings.
    public static func shared(_ settings: Settings) -> SyslogStore {
        registry.withLockedValue { stores in
            if let store = stores[settings.directory] {
                store.state.withLockedValue { $0.settings = settings }
                return store
            }
            let store = SyslogStore(settings)
            stores[settings.directory] = store
            return store
        }
    }

    /// Tests hold the writer back (`writerHeld`) to see the queue fill, then `releaseWriter()`.
    private let writerHeld: NIOLockedValueBox<Bool>

    init(_ settings: Settings, writerHeld: Bool = false) {
        state = NIOLockedValueBox(State(settings: settings))
        files = StoreFiles(logger: logger)
        self.writerHeld = NIOLockedValueBox(writerHeld)
    }

    func releaseWriter() {
        writerHeld.withLockedValue { $0 = false }
        schedule()
    }

    public var settings: Settings { state.withLockedValue { $0.settings } }

    /// Messages dropped because the store was full, since the start.
    public var droppedMessages: Int { state.withLockedValue { $0.dropped } }

    /// Takes one message (a datagram's); dropped when the queue is full.
    public func append(_ message: Message) -> Admission {
        append(CollectionOfOne(message), cost: message.cost, mustKeep: false)
    }

    /// Takes messages (a TCP read's), whatever the queue holds; `.storedButFull` says the sender
    /// should wait.
    public func append(_ messages: [Message]) -> Admission {
        append(messages, cost: messages.reduce(0) { $0 + $1.cost }, mustKeep: true)
    }

    private func append(_ messages: some Collection<Message>, cost: Int, mustKeep: Bool) -> Admission {
        let count = messages.count
        var report: (Int, Int)?
        let (admission, startWriter) = state.withLockedValue { state -> (Admission, Bool) in
            if !mustKeep, state.queued + cost > state.settings.maximumPendingBytes {
                state.dropped += count
                let now = NIODeadline.now()
                if now - state.lastReport >= .seconds(10) {
                    state.lastReport = now
                    report = (state.dropped - state.droppedReported, state.dropped)
                    state.droppedReported = state.dropped
                }
                return (.dropped, false)
            }
            state.pending.append(contentsOf: messages)
            state.queued += cost
            let start = !state.writing
            state.writing = true
            if start && !state.started { state.started = true }
            return (state.queued > state.settings.maximumPendingBytes ? .storedButFull : .stored, start)
        }
        if let (recent, total) = report {
            logger.warning("syslog store full: UDP messages dropped (the disk is slower than the senders)", metadata: [
                "service": "syslog", "dropped": "\(recent)", "dropped_total": "\(total)",
            ])
        }
        if startWriter { schedule() }
        return admission
    }

    /// Calls `body` once the queue is below half of `max_pending_bytes` (at once if it is).
    public func whenDrained(_ body: @escaping @Sendable () -> Void) {
        let now = state.withLockedValue { state -> Bool in
            if state.queued <= state.settings.maximumPendingBytes / 2 { return true }
            state.waiters.append(body)
            return false
        }
        if now { body() }
    }

    /// Writes out everything taken so far and syncs the file to disk (a clean stop).
    public func flush() async {
        let started = state.withLockedValue { $0.started }
        guard started else { return }
        _ = try? await pool.runIfActive { [self] in
            writeAll()
            files.sync()
        }
    }

    private func schedule() {
        guard !writerHeld.withLockedValue({ $0 }) else { return }
        startPoolOnce()
        pool.submit { [self] _ in writeAll() }
    }

    private let poolStarted = NIOLockedValueBox(false)

    // Used only on the store's thread (one job at a time).
    nonisolated(unsafe) private var lines: [UInt8] = []
    nonisolated(unsafe) private var lastAddress: SocketAddress?
    nonisolated(unsafe) private var lastPeer = ""

    private func encode(_ message: Message, into lines: inout [UInt8]) {
        let peer: String
        switch message.peer {
        case .text(let text): peer = text
        case .address(let address):
            if address != lastAddress {
                lastAddress = address
                lastPeer = address.logDescription
            }
            peer = lastPeer
        }
        let parsed = SyslogMessage.parse(message.bytes[...])
        let truncated = !message.incomplete && message.length > message.bytes.count
        SyslogRecord.encode(parsed, length: message.length, truncated: truncated,
                            incomplete: message.incomplete,
                            receipt: .init(seconds: message.seconds, nanoseconds: message.nanoseconds, peer: peer, transport: message.tcp ? "tcp" : "udp"),
                            into: &lines)
        if let target = message.events { Self.emit(parsed, message, truncated: truncated, peer: peer, to: target) }
    }

    /// The message's `syslog.message` event: what it says and who says it, as parsed.
    static func emit(_ parsed: SyslogMessage, _ message: Message, truncated: Bool, peer: String, to target: Message.EventTarget) {
        let fill = { (body: inout EventBody) in
            body.string("format", parsed.format.rawValue)
            body.string("facility", SyslogMessage.facilityNames[parsed.facility])
            body.string("severity", SyslogMessage.severityNames[parsed.severity])
            if let hostname = parsed.hostname { body.string("hostname", hostname) }
            if let app = parsed.app { body.string("app", app) }
            if let procid = parsed.procid { body.string("procid", procid) }
            if let msgid = parsed.msgid { body.string("msgid", msgid) }
            if let malformed = parsed.malformed { body.string("malformed", malformed) }
            if truncated || message.incomplete { body.int("length", message.length) }
            if truncated { body.bool("cut", true) }
            body.text("message", bytes: parsed.message)
        }
        switch target {
        case .datagram(let events, let channel):
            events.emit(service: "syslog", kind: "syslog.message") { body in
                body.string("transport", "udp")
                body.string("peer", peer)
                body.int("port", channel.localAddress?.port ?? 0)
                fill(&body)
            }
        case .connection(let events):
            events.emit("syslog.message", fill)
        }
    }

    private func startPoolOnce() {
        poolStarted.withLockedValue { started in
            if !started {
                pool.start()
                started = true
            }
        }
    }

    /// On the store's thread: parses, encodes and writes batches until the queue is empty.
    private func writeAll() {
        while true {
            let next = state.withLockedValue { state -> ([Message], Settings)? in
                guard !state.pending.isEmpty else {
                    state.writing = false
                    return nil
                }
                let batch = state.pending
                state.pending = []
                state.pending.reserveCapacity(batch.count)
                return (batch, state.settings)
            }
            guard let (batch, settings) = next else { return }
            var cost = 0
            // At most ~1 MiB of JSON per write, so the queue drains (and waiters wake) steadily.
            var start = 0
            while start < batch.count {
                lines.removeAll(keepingCapacity: true)
                var end = start
                while end < batch.count, lines.count < 1 << 20 {
                    encode(batch[end], into: &lines)
                    cost += batch[end].cost
                    end += 1
                }
                files.write(lines, settings: settings)
                start = end
            }
            let waiters = state.withLockedValue { state -> [@Sendable () -> Void] in
                state.queued -= cost
                guard state.queued <= state.settings.maximumPendingBytes / 2 else { return [] }
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            for waiter in waiters { waiter() }
        }
    }
}

/// The open file and its rotation; used only on the store's thread.
final class StoreFiles: @unchecked Sendable {
    private var fd: Int32 = -1
    private var date = ""
    private var lastError = NIODeadline.distantPast
    private var lost = 0
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    static let prefix = "syslog-"
    static let suffix = ".jsonl"

    func path(_ settings: SyslogStore.Settings, date: String) -> String {
        "\(settings.directory)/\(Self.prefix)\(date)\(Self.suffix)"
    }

    func write(_ batch: [UInt8], settings: SyslogStore.Settings) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let today = SyslogRecord.date(seconds: Int(now.tv_sec))
        if fd < 0 || today != date {
            reopen(settings, date: today)
            if fd >= 0 { enforceCap(settings, headroom: 0) }
        }
        guard fd >= 0 else { return failed(batch[...], "cannot open \(path(settings, date: today))", code: errno) }
        // Whole lines, each file filled to rotate_bytes and no further (a line longer than
        // that gets a file of its own).
        var offset = 0
        var fresh = false
        while offset < batch.count {
            let size = Int(lseek(fd, 0, SEEK_END))
            var end = min(batch.count, offset + max(0, settings.rotateBytes - size))
            if end < batch.count {
                if let newline = batch[offset..<end].lastIndex(of: 0x0A) {
                    end = newline + 1
                } else if size == 0 || fresh {
                    end = batch[offset...].firstIndex(of: 0x0A).map { $0 + 1 } ?? batch.count
                } else {
                    rotate(settings)
                    fresh = true
                    guard fd >= 0 else { return failed(batch[offset...], "cannot open \(path(settings, date: date))", code: errno) }
                    continue
                }
            }
            guard writeAll(batch[offset..<end]) else { return failed(batch[offset...], "cannot write \(path(settings, date: date))", code: errno) }
            offset = end
            fresh = false
            if Int(lseek(fd, 0, SEEK_END)) >= settings.rotateBytes {
                rotate(settings)
                fresh = true
                guard fd >= 0 else { return failed(batch[offset...], "cannot open \(path(settings, date: date))", code: errno) }
            }
        }
    }

    private func writeAll(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }

    func sync() {
        if fd >= 0 { fsync(fd) }
    }

    private func failed(_ batch: ArraySlice<UInt8>, _ what: String, code: Int32) {
        lost += batch.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        let now = NIODeadline.now()
        guard now - lastError >= .seconds(10) else { return }
        lastError = now
        logger.error("syslog store: messages lost", metadata: [
            "service": "syslog", "error": "\(what): \(String(cString: strerror(code)))", "lost_total": "\(lost)",
        ])
    }

    private func reopen(_ settings: SyslogStore.Settings, date: String) {
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
        self.date = date
        fd = open(path(settings, date: date), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
    }

    /// Renames the day's file out of the way (unless another process just did) and reopens.
    private func rotate(_ settings: SyslogStore.Settings) {
        withLock(settings) {
            let current = path(settings, date: date)
            let probe = open(current, O_RDONLY | O_CLOEXEC)
            if probe >= 0 {
                let size = lseek(probe, 0, SEEK_END)
                close(probe)
                if size >= settings.rotateBytes {
                    let next = (files(settings).filter { $0.date == date }.compactMap(\.index).max() ?? 0) + 1
                    rename(current, "\(settings.directory)/\(Self.prefix)\(date).\(next)\(Self.suffix)")
                }
            }
            reopen(settings, date: date)
            enforceCap(settings, headroom: settings.rotateBytes)
        }
    }

    private func withLock(_ settings: SyslogStore.Settings, _ body: () -> Void) {
        let lock = open("\(settings.directory)/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        if lock >= 0 { flock(lock, LOCK_EX) }
        body()
        if lock >= 0 { close(lock) }
    }

    struct StoredFile {
        var name: String
        var date: String
        /// nil: the day's current file (the newest of its day).
        var index: Int?
        var size: Int
    }

    /// The store's files, oldest first.
    func files(_ settings: SyslogStore.Settings) -> [StoredFile] {
        guard let handle = opendir(settings.directory) else { return [] }
        defer { closedir(handle) }
        var found: [StoredFile] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            guard name.hasPrefix(Self.prefix), name.hasSuffix(Self.suffix) else { continue }
            let middle = name.dropFirst(Self.prefix.count).dropLast(Self.suffix.count)
            let parts = middle.split(separator: ".", maxSplits: 1)
            guard let day = parts.first, day.count == 10 else { continue }
            var index: Int?
            if parts.count == 2 {
                guard let number = Int(parts[1]), number > 0 else { continue }
                index = number
            }
            var info = stat()
            guard stat("\(settings.directory)/\(name)", &info) == 0 else { continue }
            found.append(StoredFile(name: name, date: String(day), index: index, size: Int(info.st_size)))
        }
        found.sort { ($0.date, $0.index ?? Int.max) < ($1.date, $1.index ?? Int.max) }
        return found
    }

    /// Removes the oldest files until all of them (plus `headroom` for the file being written)
    /// fit in `max_total_bytes`; the file being written stays.
    private func enforceCap(_ settings: SyslogStore.Settings, headroom: Int) {
        let all = files(settings)
        var total = all.reduce(0) { $0 + $1.size } + headroom
        let current = "\(Self.prefix)\(date)\(Self.suffix)"
        for file in all where total > settings.maximumTotalBytes && file.name != current {
            if unlink("\(settings.directory)/\(file.name)") == 0 {
                total -= file.size
                logger.notice("syslog store: removed the oldest file to stay under max_total_bytes", metadata: [
                    "service": "syslog", "file": "\(file.name)", "bytes": "\(file.size)", "max_total_bytes": "\(settings.maximumTotalBytes)",
                ])
            }
        }
    }
}
