import CInetSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes one line per log event to standard error, as text (`key=value`) or as one JSON
/// object per line.
public struct InetLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: LogFormat
    private let sink: LogSink

    public init(label: String, level: Logger.Level, format: LogFormat, sink: LogSink = .standardError) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let time = Self.timestamp()
        let line: String
        switch format {
        case .text:
            var text = "\(time) \(event.level.rawValue.uppercased()) \(event.message)"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                text += " \(key)=\(Self.textValue(value))"
            }
            line = text + "\n"
        case .json:
            var text = "{\"time\":\"\(time)\",\"level\":\"\(event.level.rawValue)\",\"msg\":\(JSON.quote("\(event.message)"))"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                text += ",\(JSON.quote(key)):\(Self.jsonValue(value))"
            }
            line = text + "}\n"
        }
        sink.write(line)
    }

    private static func textValue(_ value: Logger.Metadata.Value) -> String {
        let text = "\(value)"
        if text.isEmpty || text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) { return JSON.quote(text) }
        return text
    }

    private static func jsonValue(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text):
            if let number = Int(text), String(number) == text { return text }
            return JSON.quote(text)
        case .stringConvertible(let convertible):
            let text = convertible.description
            if convertible is Int || convertible is Double { return text }
            return JSON.quote(text)
        case .array(let items):
            return "[" + items.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let dictionary):
            return "{" + dictionary.sorted { $0.key < $1.key }.map { "\(JSON.quote($0.key)):\(jsonValue($0.value))" }.joined(separator: ",") + "}"
        }
    }

    /// RFC 3339 UTC with milliseconds, without Foundation's formatters on the hot path.
    public static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return timestamp(seconds: Int(now.tv_sec), milliseconds: Int(now.tv_nsec / 1_000_000))
    }

    /// The same for a given time.
    public static func timestamp(seconds time: Int, milliseconds: Int = 0) -> String {
        var seconds = time_t(time)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(milliseconds), 3))Z"
    }
}

/// Where log lines go: appended to a bounded buffer in memory that a thread of the sink's own
/// writes to the descriptor, so no event loop ever waits for the log's destination (a slow
/// terminal, a full pipe to the supervisor, a stalled journald). When the destination does
/// not keep up and the buffer is full (`log_buffer_bytes`), lines are dropped and counted, and
/// the count is written as soon as there is room again, never silently. Whole lines are
/// written in order, with one `write(2)` for all that gathered meanwhile.
public final class LogSink: @unchecked Sendable {
    // (@unchecked: every mutable member is touched under `mutex` only, but the buffers the
    // writer thread swaps out, which are its own while it writes.)
    private let descriptor: Int32
    // (Allocated: a mutex and conditions need addresses that never move.)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let idle = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var pending: [UInt8] = []
    private var capacity: Int
    private var dropped = 0
    private var droppedTotal = 0
    private var writing = false
    private var started = false

    /// The default of `log_buffer_bytes`.
    public static let defaultCapacity = 4 << 20

    public init(descriptor: Int32, capacity: Int = LogSink.defaultCapacity) {
        self.descriptor = descriptor
        self.capacity = capacity
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(idle, nil)
    }

    /// The process's log: standard error, or in a worker whose supervisor's standard error is a
    /// file, that file (`INETKIT_LOG_FD`, a descriptor the supervisor handed down, checked to be
    /// a regular file): the worker's lines then go there without passing through the
    /// supervisor.
    public static let standardError = LogSink(descriptor: inheritedLogFile() ?? 2)

    static func inheritedLogFile() -> Int32? {
        guard let text = getenv("INETKIT_LOG_FD"), let fd = Int32(String(cString: text)), fd > 2 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// `log_buffer_bytes`: the most that may wait to be written.
    public func setCapacity(_ bytes: Int) {
        pthread_mutex_lock(mutex)
        capacity = max(4096, bytes)
        pthread_mutex_unlock(mutex)
    }

    /// Lines dropped since the start because the destination did not keep up.
    public var droppedLines: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return droppedTotal + dropped
    }

    func write(_ line: String) {
        var line = line
        line.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Queues one whole line (with its newline); never blocks on the destination.
    public func append(_ line: UnsafeRawBufferPointer) {
        pthread_mutex_lock(mutex)
        if !started { start() }
        if pending.count + line.count > capacity {
            dropped += 1
            pthread_mutex_unlock(mutex)
            return
        }
        let wasEmpty = pending.isEmpty
        pending.append(contentsOf: line)
        let signal = wasEmpty && !writing
        pthread_mutex_unlock(mutex)
        if signal { pthread_cond_signal(wake) }
    }

    /// Waits (at most `timeout` seconds) until everything queued so far is written: at exit.
    public func flush(timeout: Double = 2) {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let whole = Int(timeout)
        deadline.tv_sec += whole
        deadline.tv_nsec += Int((timeout - Double(whole)) * 1e9)
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        pthread_mutex_lock(mutex)
        while started && (!pending.isEmpty || writing || dropped > 0) {
            if pthread_cond_timedwait(idle, mutex, &deadline) == ETIMEDOUT { break }
        }
        pthread_mutex_unlock(mutex)
    }

    /// Starts the writer (under `mutex`).
    private func start() {
        started = true
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let sink = Unmanaged<LogSink>.fromOpaque(raw!).takeRetainedValue()
            sink.run()
            return nil
        }, box.toOpaque())
        if result != 0 {
            box.release()
            started = false
        } else {
            pthread_detach(thread)
        }
    }

    /// How long the writer lets lines gather once woken: one write (and one wake-up of
    /// whoever reads the other end) per 5 ms of a busy host, not one per line.
    static let gatherMicroseconds: UInt32 = 5000

    private func run() {
        // (Otherwise it bears the name of whichever thread logged first.)
        inetkit_name_thread("inetkit-log")
        var batch: [UInt8] = []
        while true {
            pthread_mutex_lock(mutex)
            while pending.isEmpty && dropped == 0 {
                writing = false
                pthread_cond_broadcast(idle)
                pthread_cond_wait(wake, mutex)
            }
            writing = true
            let gather = pending.count < capacity / 4
            pthread_mutex_unlock(mutex)
            if gather { usleep(Self.gatherMicroseconds) }
            pthread_mutex_lock(mutex)
            swap(&batch, &pending)
            let lost = dropped
            droppedTotal += dropped
            dropped = 0
            pthread_mutex_unlock(mutex)
            writeAll(batch)
            batch.removeAll(keepingCapacity: batch.capacity <= 1 << 20)
            if lost > 0 {
                writeAll(Array("\(InetLogHandler.timestamp()) WARNING log: \(lost) lines dropped (the log's destination did not keep up; log_buffer_bytes bounds what waits)\n".utf8))
            }
        }
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written <= 0 {
                    if written < 0 && errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

/// One log line built straight into bytes, in the host's format (`LogLine.format`), the way
/// `InetLogHandler` would write it, for the lines written per request and per datagram (the
/// access log, the connection and exchange lines): no metadata dictionary, no string
/// interpolation, queued to the sink without waiting. Fields are given in the order
/// `InetLogHandler` sorts them: by key.
public struct LogLine {
    /// The host's `log_format`; set once at start, before any service runs.
    nonisolated(unsafe) public static var format = LogFormat.text
    /// A field every line of this process ends with (a worker's `worker=NAME`, as its logger
    /// adds it to the lines it writes); set once at start. Its key sorts after every other.
    nonisolated(unsafe) public static var processField: (key: String, value: String)? {
        didSet {
            guard let (key, value) = processField else {
                processFieldBytes = ([], [])
                return
            }
            var text = LogLine(empty: false)
            text.field(key: key, value)
            var json = LogLine(empty: true)
            json.field(key: key, value)
            processFieldBytes = (text.bytes, json.bytes)
        }
    }
    /// That field as each format writes it, encoded once.
    nonisolated(unsafe) private static var processFieldBytes: (text: [UInt8], json: [UInt8]) = ([], [])

    private var bytes: [UInt8]
    private let json: Bool

    public init(level: Logger.Level, message: String) {
        json = Self.format == .json
        bytes = []
        bytes.reserveCapacity(256)
        if json {
            bytes.append(contentsOf: #"{"time":""#.utf8)
            Self.appendTimestamp(to: &bytes)
            bytes.append(contentsOf: #"","level":""#.utf8)
            bytes.append(contentsOf: level.rawValue.utf8)
            bytes.append(contentsOf: #"","msg":"#.utf8)
            bytes.append(contentsOf: JSON.quote(message).utf8)
        } else {
            Self.appendTimestamp(to: &bytes)
            let name: StaticString = switch level {
            case .trace: " TRACE "
            case .debug: " DEBUG "
            case .info: " INFO "
            case .notice: " NOTICE "
            case .warning: " WARNING "
            case .error: " ERROR "
            case .critical: " CRITICAL "
            }
            name.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: message.utf8)
        }
    }

    /// An empty line (no time, level or message), for a field encoded ahead.
    private init(empty json: Bool) {
        self.json = json
        bytes = []
    }

    /// The time as `InetLogHandler.timestamp()` gives it (`2026-12-07T09:13:44.176Z`), written
    /// as bytes (no string per line).
    static func appendTimestamp(to bytes: inout [UInt8]) {
        var stamp: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &stamp) { raw in
            inetkit_log_timestamp(raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
            bytes.append(contentsOf: UnsafeRawBufferPointer(raw))
        }
    }

    /// Appends a decimal (digits from the right, in a buffer on the stack).
    private mutating func appendDecimal(_ value: Int) {
        var value = value
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            value = value == Int.min ? Int.max : -value
        }
        let width = EventBody.decimalWidth(value)
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { raw in
            let start = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            EventBody.writeDecimal(value, width: width, at: start)
            bytes.append(contentsOf: UnsafeBufferPointer(start: start, count: width))
        }
    }

    private mutating func appendKey(_ key: StaticString) {
        if json {
            bytes.append(contentsOf: #",""#.utf8)
            key.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: #"":"#.utf8)
        } else {
            bytes.append(0x20)
            key.withUTF8Buffer { bytes.append(contentsOf: $0) }
            bytes.append(UInt8(ascii: "="))
        }
    }

    /// A peer's address as `logDescription` gives it (`192.0.2.7:40001`, `[::1]:53`); IPv4
    /// written straight from the sockaddr.
    public mutating func field(_ key: StaticString, address: SocketAddress) {
        guard case .v4(let v4) = address else {
            field(key, address.logDescription)
            return
        }
        appendKey(key)
        if json { bytes.append(UInt8(ascii: "\"")) }
        // struct sockaddr_in: family (2 bytes), port (2, network order), address (4).
        let raw = withUnsafeBytes(of: v4.address) { $0.loadUnaligned(as: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8).self) }
        appendDecimal(Int(raw.4))
        bytes.append(UInt8(ascii: "."))
        appendDecimal(Int(raw.5))
        bytes.append(UInt8(ascii: "."))
        appendDecimal(Int(raw.6))
        bytes.append(UInt8(ascii: "."))
        appendDecimal(Int(raw.7))
        bytes.append(UInt8(ascii: ":"))
        appendDecimal(Int(raw.2) << 8 | Int(raw.3))
        if json { bytes.append(UInt8(ascii: "\"")) }
    }

    /// The milliseconds since `start` with one decimal (as `milliseconds(since:)` gives them).
    public mutating func field(_ key: StaticString, millisecondsSince start: NIODeadline) {
        let tenths = max(0, (NIODeadline.now() - start).nanoseconds / 100_000)
        appendKey(key)
        appendDecimal(Int(tenths / 10))
        bytes.append(UInt8(ascii: "."))
        bytes.append(UInt8(ascii: "0") + UInt8(tenths % 10))
    }

    /// A text field (quoted as `InetLogHandler` quotes it).
    public mutating func field(_ key: StaticString, _ value: String) {
        key.withUTF8Buffer { field(name: $0, value) }
    }

    private mutating func field(key: String, _ value: String) {
        var key = key
        key.withUTF8 { field(name: $0, value) }
    }

    private mutating func field(name key: UnsafeBufferPointer<UInt8>, _ value: String) {
        do {
            if json {
                bytes.append(contentsOf: #",""#.utf8)
                bytes.append(contentsOf: key)
                bytes.append(contentsOf: #"":"#.utf8)
                if let number = Int(value), String(number) == value {
                    bytes.append(contentsOf: value.utf8)
                } else {
                    bytes.append(contentsOf: JSON.quote(value).utf8)
                }
            } else {
                bytes.append(0x20)
                bytes.append(contentsOf: key)
                bytes.append(UInt8(ascii: "="))
                // (Most values are native strings: scanned and copied from their storage.)
                var bare = false
                let contiguous: Void? = value.utf8.withContiguousStorageIfAvailable { utf8 in
                    bare = Self.isBare(utf8)
                    if bare { bytes.append(contentsOf: utf8) }
                }
                if contiguous == nil {
                    bare = Self.isBare(value.utf8)
                    if bare { bytes.append(contentsOf: value.utf8) }
                }
                if !bare { bytes.append(contentsOf: JSON.quote(value).utf8) }
            }
        }
    }

    /// Whether a text value is written as it is (not empty, no space, quote or `=`).
    private static func isBare(_ utf8: some Sequence<UInt8>) -> Bool {
        var empty = true
        for byte in utf8 {
            if byte == 0x20 || byte == 0x22 || byte == 0x3D { return false }
            empty = false
        }
        return !empty
    }

    /// A number field.
    public mutating func field(_ key: StaticString, _ value: Int) {
        appendKey(key)
        appendDecimal(value)
    }

    /// Milliseconds since `start` with one decimal, as the log lines give durations.
    public static func milliseconds(since start: NIODeadline) -> String {
        let tenths = (NIODeadline.now() - start).nanoseconds / 100_000
        return "\(tenths / 10).\(tenths % 10)"
    }

    /// Queues the line.
    public consuming func write(to sink: LogSink = .standardError) {
        bytes.append(contentsOf: json ? Self.processFieldBytes.json : Self.processFieldBytes.text)
        bytes.append(contentsOf: json ? "}\n".utf8 : "\n".utf8)
        bytes.withUnsafeBytes { sink.append($0) }
    }
}

/// Minimal JSON text helpers for logs and the ports file.
public enum JSON {
    /// A JSON string literal for `text`.
    public static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
