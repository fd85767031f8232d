#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// A failed file operation in the mail store, with the path and the system's reason.
public struct MaildirError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var code: Int32

    init(_ operation: String, _ path: String, code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

/// The mail store: one Maildir (tmp/, new/, cur/) per mailbox under `<root>/<domain>/<local-part>/`.
/// Every call blocks on the file system: run it on a thread pool, never on an event loop.
public final class Maildir: Sendable {
    /// Threads for mail file I/O. Durable delivery waits on fsync, which the disk serves
    /// better with many requests in flight than with one per core.
    public static let ioThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    public let root: String
    private let hostPart: String
    private let sequence = Atomic<Int>(0)
    private let known = NIOLockedValueBox<Set<String>>([])

    public init(root: String) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
        // Maildir names carry the host; '/' and ':' are written as octal escapes (maildir(5)).
        var part = ""
        for character in systemHostName() {
            switch character {
            case "/": part += "\\057"
            case ":": part += "\\072"
            case ",": part += "\\054"
            default: part.append(character)
            }
        }
        hostPart = part
    }

    /// The Maildir folder of a mailbox (names in lower case).
    public func folder(for address: MailAddress) -> String {
        "\(root)/\(address.domain)/\(address.localPart.lowercased())"
    }

    /// Creates the mailbox's tmp/, new/ and cur/ (and its parents) if missing; a new folder's
    /// entry is made durable in its parent.
    func ensureMailbox(_ folder: String) throws(MaildirError) {
        if known.withLockedValue({ $0.contains(folder) }) { return }
        try makeDirectories(folder)
        for sub in ["tmp", "new", "cur"] { try makeDirectory("\(folder)/\(sub)", syncParent: false) }
        try syncDirectory(folder)
        known.withLockedValue { _ = $0.insert(folder) }
    }

    private func makeDirectories(_ path: String) throws(MaildirError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            try makeDirectory(current, syncParent: true)
        }
    }

    private func makeDirectory(_ path: String, syncParent: Bool) throws(MaildirError) {
        if mkdir(path, 0o700) == 0 {
            if syncParent, let slash = path.lastIndex(of: "/") {
                let parent = String(path[..<slash])
                try syncDirectory(parent.isEmpty ? "/" : parent)
            }
            return
        }
        let code = errno
        var info = stat()
        guard code == EEXIST, stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw MaildirError("mkdir", path, code: code == EEXIST ? ENOTDIR : code)
        }
    }

    func syncDirectory(_ path: String) throws(MaildirError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw MaildirError("open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw MaildirError("fsync", path) }
    }

    /// Starts a message in the first recipient's tmp/.
    public func beginDelivery(into folder: String) throws(MaildirError) -> MaildirDelivery {
        try ensureMailbox(folder)
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let serial = sequence.wrappingAdd(1, ordering: .relaxed).oldValue
        let base = "\(now.tv_sec).M\(now.tv_nsec / 1000)P\(getpid())Q\(serial).\(hostPart)"
        let path = "\(folder)/tmp/\(base)"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MaildirError("create", path) }
        return MaildirDelivery(store: self, fd: fd, temporaryPath: path, base: base)
    }

    /// The messages of a mailbox (new/ and cur/), oldest first; empty when it has none yet.
    public func messages(in folder: String) throws(MaildirError) -> [MaildirMessage] {
        var found: [MaildirMessage] = []
        for sub in ["new", "cur"] {
            let directory = "\(folder)/\(sub)"
            guard let handle = opendir(directory) else {
                if errno == ENOENT { continue }
                throw MaildirError("opendir", directory)
            }
            defer { closedir(handle) }
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
                }
                guard !name.hasPrefix(".") else { continue }
                let path = "\(directory)/\(name)"
                if let message = MaildirMessage(path: path, name: name) { found.append(message) }
            }
        }
        found.sort { ($0.seconds, $0.microseconds, $0.name) < ($1.seconds, $1.microseconds, $1.name) }
        return found
    }

    /// Every mailbox's messages, newest first, at most `limit` (the API's list): each with
    /// its mailbox as `local@domain`.
    public func allMessages(limit: Int) -> [(mailbox: String, message: MaildirMessage)] {
        var found: [(mailbox: String, message: MaildirMessage)] = []
        for domain in Self.entries(root) {
            for local in Self.entries(root + "/" + domain) {
                guard let messages = try? messages(in: root + "/" + domain + "/" + local) else { continue }
                for message in messages { found.append((local + "@" + domain, message)) }
                // Bounded while walking: only the newest `limit` are kept.
                if found.count > limit * 2 {
                    found.sort { Self.newer($0.message, $1.message) }
                    found.removeLast(found.count - limit)
                }
            }
        }
        found.sort { Self.newer($0.message, $1.message) }
        return Array(found.prefix(limit))
    }

    static func newer(_ a: MaildirMessage, _ b: MaildirMessage) -> Bool {
        (a.seconds, a.microseconds, a.name) > (b.seconds, b.microseconds, b.name)
    }

    /// The names in a folder (not starting with a dot), or none.
    private static func entries(_ folder: String) -> [String] {
        guard let handle = opendir(folder) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle), names.count < 100_000 {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes a message; a message already gone counts as removed.
    public func remove(_ message: MaildirMessage) throws(MaildirError) {
        guard unlink(message.path) == 0 || errno == ENOENT else { throw MaildirError("unlink", message.path) }
    }
}

/// One message being written: bytes go to tmp/, and `commit` makes it appear in every
/// recipient's new/ at once, durably.
public final class MaildirDelivery: @unchecked Sendable {
    // Unchecked: a delivery belongs to one SMTP session, which runs one step on it at a time.
    private let store: Maildir
    private var fd: Int32
    let temporaryPath: String
    private let base: String
    /// Bytes written (the file's size) and line feeds among them (for the CRLF size).
    public private(set) var size = 0
    private var lineFeeds = 0

    init(store: Maildir, fd: Int32, temporaryPath: String, base: String) {
        self.store = store
        self.fd = fd
        self.temporaryPath = temporaryPath
        self.base = base
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    public func write(_ bytes: ByteBuffer) throws(MaildirError) {
        var failure: MaildirError?
        bytes.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = MaildirError("write", temporaryPath)
                    return
                }
                offset += written
            }
            for byte in raw where byte == 0x0A { lineFeeds += 1 }
        }
        if let failure { throw failure }
        size += bytes.readableBytes
    }

    /// Syncs the file, links it into each folder's new/ under its final name, syncs those
    /// folders, and removes the tmp/ name. On any failure every link made is removed again, so
    /// the message is visible in all mailboxes or in none. Returns the final file name.
    @discardableResult
    public func commit(into folders: [String]) throws(MaildirError) -> String {
        defer { discard() }
        guard fsync(fd) == 0 else { throw MaildirError("fsync", temporaryPath) }
        close(fd)
        fd = -1
        let name = "\(base),S=\(size),W=\(size + lineFeeds)"
        var linked: [String] = []
        do throws(MaildirError) {
            for folder in folders {
                try store.ensureMailbox(folder)
                let target = "\(folder)/new/\(name)"
                guard link(temporaryPath, target) == 0 else { throw MaildirError("link", target) }
                linked.append(target)
            }
            for folder in folders { try store.syncDirectory("\(folder)/new") }
        } catch {
            for path in linked { unlink(path) }
            throw error
        }
        return name
    }

    /// Abandons the message: nothing of it stays in tmp/.
    public func discard() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        unlink(temporaryPath)
    }
}

/// A message file in a Maildir as POP3 lists it.
public struct MaildirMessage: Sendable, Equatable {
    public var path: String
    public var name: String
    /// The size on disk, and as sent with CRLF line endings (what POP3 reports).
    public var size: Int
    public var virtualSize: Int
    /// A name that stays the same when the message moves from new/ to cur/ (POP3 UIDL).
    public var uniqueID: String
    /// When it was delivered (from its name), seconds since 1970.
    public let seconds: Int
    /// From a name like `<seconds>.M<microseconds>P<pid>…`, so that one second's messages sort in order.
    let microseconds: Int

    init?(path: String, name: String) {
        self.path = path
        self.name = name
        let base = name.split(separator: ":", maxSplits: 1).first.map(String.init) ?? name
        var size: Int?
        var virtual: Int?
        for field in base.split(separator: ",").dropFirst() {
            if field.hasPrefix("S=") { size = Int(field.dropFirst(2)) }
            if field.hasPrefix("W=") { virtual = Int(field.dropFirst(2)) }
        }
        if size == nil || virtual == nil {
            // Not written by InetKit: count it.
            guard let counted = Self.count(path) else { return nil }
            size = counted.size
            virtual = counted.size + counted.lineFeeds
        }
        self.size = size!
        self.virtualSize = virtual!
        seconds = Int(base.prefix { $0.isNumber }) ?? 0
        let afterDot = base.drop { $0 != "." }.dropFirst()
        microseconds = afterDot.first == "M" ? Int(afterDot.dropFirst().prefix { $0.isNumber }) ?? 0 : 0
        var id = ""
        for scalar in base.unicodeScalars.prefix(70) {
            id.unicodeScalars.append(scalar.value > 0x20 && scalar.value < 0x7F ? scalar : "_")
        }
        uniqueID = id
    }

    private static func count(_ path: String) -> (size: Int, lineFeeds: Int)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var size = 0
        var lineFeeds = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            size += count
            for byte in buffer[0..<count] where byte == 0x0A { lineFeeds += 1 }
        }
        return (size, lineFeeds)
    }
}

/// Reads a message file in chunks (for RETR and TOP), off the event loop.
final class MaildirReader: @unchecked Sendable {
    // Unchecked: one POP3 session reads one chunk at a time.
    private var fd: Int32
    let path: String

    init(path: String) throws(MaildirError) {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        self.path = path
        guard fd >= 0 else { throw MaildirError("open", path) }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// The next chunk, or nil at the end of the file.
    func next(_ allocator: ByteBufferAllocator, size: Int = 128 * 1024) throws(MaildirError) -> ByteBuffer? {
        var buffer = allocator.buffer(capacity: size)
        var failed = false
        let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            while true {
                let count = read(fd, raw.baseAddress!, size)
                if count < 0, errno == EINTR { continue }
                if count < 0 { failed = true }
                return max(count, 0)
            }
        }
        if failed { throw MaildirError("read", path) }
        return count == 0 ? nil : buffer
    }
}
