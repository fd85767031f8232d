import CInetSupport
import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Appends every event of the ring to `<folder>/events.jsonl`, one JSON object per line, on a
/// thread of its own (never an event loop): it wakes every 50 ms (10 ms while events come),
/// copies what is new and writes it in one `write(2)`. Past `rotateBytes` the file becomes `events.N.jsonl` (N counting up)
/// and the oldest files go while all of them pass `maxBytes`. Events the ring overwrote before
/// the journal read them (a burst longer than the ring) are counted and noted in the journal
/// as one `{"kind":"journal.lost","count":N}` line: a gap is visible, never silent.
///
/// The writer copies the events' bytes; it parses none of them (under the supervisor it runs as
/// root, and the bytes come from workers).
public final class EventJournal: @unchecked Sendable {
    public let folder: String
    private let ring: EventRing
    private let rotateBytes: Int
    private let maxBytes: Int
    private let logger: Logger
    private let control = NIOLockedValueBox<(stop: Bool, done: Bool)>((false, false))
    private var thread: pthread_t?
    private var fd: Int32 = -1
    private var size = 0
    public private(set) var lost = 0

    public static let fileName = "events.jsonl"

    public init(ring: EventRing, folder: String, rotateBytes: Int, maxBytes: Int, logger: Logger) {
        self.ring = ring
        self.folder = folder
        self.rotateBytes = rotateBytes
        self.maxBytes = maxBytes
        self.logger = logger
    }

    /// The id of the last event in the journal of `folder` (0 when there is none): the ring of a
    /// new host starts after it, so ids keep increasing across restarts.
    public static func lastID(in folder: String) -> Int {
        let path = folder + "/" + fileName
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        let end = lseek(fd, 0, SEEK_END)
        guard end > 0 else { return 0 }
        let length = Int(min(end, 256 * 1024))
        var bytes = [UInt8](repeating: 0, count: length)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, end - off_t(length)) }
        guard got == length else { return 0 }
        // The last complete line that starts as the journal writes them: {"id":N,
        let lines = bytes.split(separator: 0x0A)
        for line in lines.reversed() {
            let prefix = Array(#"{"id":"#.utf8)
            guard line.count > prefix.count, Array(line.prefix(prefix.count)) == prefix else { continue }
            let digits = line.dropFirst(prefix.count).prefix { $0 >= 0x30 && $0 <= 0x39 }
            guard !digits.isEmpty, digits.count <= 15, let id = Int(String(decoding: digits, as: UTF8.self)) else { continue }
            return id
        }
        return 0
    }

    /// Starts writing from the event after `after`.
    public func start(after: Int) throws(JournalError) {
        do { try createDirectories(folder, mode: 0o750) } catch { throw JournalError(message: error.description) }
        try openFile()
        var cursor = EventCursor(next: after + 1)
        let box = Unmanaged.passRetained(Runner { [self] in
            inetkit_name_thread("inetkit-journal")
            run(cursor: &cursor)
        })
        var handle = pthread_t()
        let result = pthread_create(&handle, nil, { raw in
            let runner = Unmanaged<Runner>.fromOpaque(raw!).takeRetainedValue()
            runner.body()
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw JournalError(message: "cannot start the journal thread: \(String(cString: strerror(result)))")
        }
        thread = handle
    }

    /// Writes what is left and stops (at shutdown, after the last connection closed).
    public func stop() {
        guard let thread else { return }
        control.withLockedValue { $0.stop = true }
        pthread_join(thread, nil)
        self.thread = nil
        if fd >= 0 {
            fsync(fd)
            close(fd)
            fd = -1
        }
    }

    private final class Runner {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// How long the writer lets events gather after a write that emptied the ring's backlog:
    /// one `write(2)` per ~10 ms of a busy host instead of one per handful of events (at 100k
    /// events/s that is 1000 events a write, a tenth of the default ring).
    static let gatherMicroseconds: UInt32 = 10_000

    private func run(cursor: inout EventCursor) {
        var batch: [UInt8] = []
        batch.reserveCapacity(1 << 20)
        while true {
            let stopping = control.withLockedValue { $0.stop }
            var wrote = false
            // Drain everything there is, in batches of up to 4096 events.
            while true {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let (count, lostNow) = cursor.pollLines(ring, into: &batch, limit: 4096, now: Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)
                if lostNow > 0 {
                    lost += lostNow
                    batch.append(contentsOf: #"{"kind":"journal.lost","count":\#(lostNow),"before":\#(cursor.next)}"#.utf8)
                    batch.append(0x0A)
                }
                if !batch.isEmpty {
                    write(batch)
                    batch.removeAll(keepingCapacity: true)
                    wrote = true
                }
                if count < 4096 { break }
            }
            if stopping { return }
            usleep(wrote ? Self.gatherMicroseconds : 50_000)
        }
    }

    private func openFile() throws(JournalError) {
        let path = folder + "/" + Self.fileName
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw JournalError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        var info = stat()
        size = fstat(fd, &info) == 0 ? Int(info.st_size) : 0
    }

    /// Appends whole lines, rotating the file before one would take it past `rotateBytes`.
    private func write(_ bytes: [UInt8]) {
        var start = 0
        while start < bytes.count {
            var end = bytes.count
            if size + (end - start) > rotateBytes {
                let room = rotateBytes - size
                if room > 0, let cut = bytes[start..<min(bytes.count, start + room)].lastIndex(of: 0x0A) {
                    end = cut + 1
                } else if size > 0 {
                    rotate()
                    if fd < 0 { return }
                    continue
                } else {
                    // One line longer than a whole file (never, with events of at most 64 KiB).
                    end = bytes[start...].firstIndex(of: 0x0A).map { $0 + 1 } ?? bytes.count
                }
            }
            guard writeRaw(bytes, start..<end) else { return }
            start = end
        }
    }

    private func writeRaw(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        guard fd >= 0 else { return false }
        var offset = range.lowerBound
        while offset < range.upperBound {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, range.upperBound - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                // A full disk: the events stay in the ring (and the dashboard); say so once a minute.
                warnWriteFailure(String(cString: strerror(errno)))
                return false
            }
            offset += written
        }
        size += range.count
        return true
    }

    private var lastWarning = 0

    private func warnWriteFailure(_ reason: String) {
        let now = Int(time(nil))
        guard now - lastWarning >= 60 else { return }
        lastWarning = now
        logger.warning("cannot write the event journal", metadata: ["folder": "\(folder)", "error": "\(reason)"])
    }

    /// The rotated files, oldest first, with their numbers and sizes.
    func rotatedFiles() -> [(number: Int, path: String, size: Int)] {
        guard let dir = opendir(folder) else { return [] }
        defer { closedir(dir) }
        var found: [(Int, String, Int)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix("events."), name.hasSuffix(".jsonl") else { continue }
            let middle = name.dropFirst("events.".count).dropLast(".jsonl".count)
            guard let number = Int(middle), number > 0 else { continue }
            var info = stat()
            let path = folder + "/" + name
            guard stat(path, &info) == 0 else { continue }
            found.append((number, path, Int(info.st_size)))
        }
        return found.sorted { $0.0 < $1.0 }
    }

    private func rotate() {
        let rotated = rotatedFiles()
        let next = (rotated.last?.number ?? 0) + 1
        // No fsync here: a busy host rotates every few seconds, and forcing each file to disk
        // made the kernel write 64 MiB at once in the middle of the load. Rotated files reach
        // the disk with the kernel's writeback like any log's (rsyslog and nginx do the same);
        // the journal is synced when the host stops.
        close(fd)
        fd = -1
        let current = folder + "/" + Self.fileName
        if rename(current, folder + "/events.\(next).jsonl") != 0 {
            warnWriteFailure("rename: \(String(cString: strerror(errno)))")
        }
        var all = rotatedFiles()
        var total = all.reduce(0) { $0 + $1.size }
        while total > maxBytes - rotateBytes, !all.isEmpty {
            let oldest = all.removeFirst()
            unlink(oldest.path)
            total -= oldest.size
        }
        do { try openFile() } catch { warnWriteFailure(error.message) }
    }
}

public struct JournalError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { "event journal: \(message)" }
}
