import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The files of the site for Hummingbird's FileMiddleware (which does ETag, Last-Modified,
/// conditional and range requests). No path that resolves outside the root (through `..` or
/// a symlink) is ever opened. Small files are answered from a bounded in-memory cache checked
/// against the file's inode, size and modification time on every request; large files stream
/// from disk in chunks with backpressure (Hummingbird's NIOFileSystem reader).
struct SiteFileProvider: FileProvider {
    struct FileAttributes: FileMiddlewareFileAttributes, Sendable {
        var isFolder: Bool
        var size: Int
        var modificationDate: Date
        var version: FileVersion
    }

    typealias FileIdentifier = String

    /// The resolved root folder, without a trailing slash.
    let root: SiteRoot
    private let files: LocalFileSystem
    private let cache: FileCache

    init(root: SiteRoot, cache: FileCache, threadPool: NIOThreadPool, logger: Logger) {
        self.root = root
        self.cache = cache
        var quiet = logger
        quiet.logLevel = .warning
        self.files = LocalFileSystem(rootFolder: "/", threadPool: threadPool, logger: quiet)
    }

    /// `path` is already percent-decoded by FileMiddleware (and was checked by SiteGuard).
    func getFileIdentifier(_ path: String) -> String? {
        guard !path.split(separator: "/").contains(where: { $0 == ".." }) else { return nil }
        guard case .found(let resolved, _) = SitePath.resolve(path, root: root.path) else { return nil }
        return resolved
    }

    func getAttributes(id: String) async throws -> FileAttributes? {
        guard let version = FileVersion(path: id) else { return nil }
        // Whole seconds, as HTTP dates have, so the ETag FileMiddleware derives from it is the
        // one the fast path (StaticFastPath) computes.
        return FileAttributes(
            isFolder: version.isDirectory, size: version.size,
            modificationDate: Date(timeIntervalSince1970: Double(version.modifiedSeconds)), version: version)
    }

    func loadFile(id: String, context: some RequestContext) async throws -> ResponseBody {
        if let buffer = cache.contents(of: id) { return ResponseBody(byteBuffer: buffer) }
        return try await files.loadFile(id: id, context: context)
    }

    func loadFile(id: String, range: ClosedRange<Int>, context: some RequestContext) async throws -> ResponseBody {
        if let buffer = cache.contents(of: id), range.lowerBound >= 0, range.upperBound < buffer.readableBytes,
           let slice = buffer.getSlice(at: buffer.readerIndex + range.lowerBound, length: range.count) {
            return ResponseBody(byteBuffer: slice)
        }
        return try await files.loadFile(id: id, range: range, context: context)
    }
}

/// What identifies one version of a file: a change to any of these is a new version.
struct FileVersion: Equatable, Sendable {
    var inode: UInt64
    var size: Int
    /// When the file was last modified: seconds since 1970 and nanoseconds into the second (kept
    /// apart: a file dated past 2262 has no nanosecond count in 64 bits, and must not trap).
    var modifiedSeconds: Int64
    var modifiedNanoseconds: Int64
    var isDirectory: Bool


    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        inode = UInt64(info.st_ino)
        size = Int(info.st_size)
        modifiedSeconds = Int64(info.st_mtim.tv_sec)
        modifiedNanoseconds = Int64(info.st_mtim.tv_nsec)
        isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
    }
}

/// Small files kept in memory, bounded in total (`file_cache_bytes`) and per file
/// (`file_cache_max_file`). An entry is used only while the file's version is unchanged.
final class FileCache: Sendable {
    /// A cached file with the header values that describe it, worked out once per version.
    struct Entry: Sendable {
        var version: FileVersion
        var buffer: ByteBuffer
        var eTag: String
        var lastModified: String
        var contentType: String?
    }

    private let entries = NIOLockedValueBox<(map: [String: Entry], bytes: Int)>(([:], 0))
    let maximumBytes: Int
    let maximumFileBytes: Int

    init(maximumBytes: Int, maximumFileBytes: Int) {
        self.maximumBytes = maximumBytes
        self.maximumFileBytes = maximumFileBytes
    }

    /// The file's contents if it is small enough to cache (read now if needed), else nil.
    func contents(of path: String) -> ByteBuffer? {
        entry(of: path)?.buffer
    }

    /// The cached file, current as of this call, if it is small enough to cache.
    func entry(of path: String) -> Entry? {
        guard maximumBytes > 0, let version = FileVersion(path: path), !version.isDirectory,
              version.size <= maximumFileBytes, version.size <= maximumBytes else { return nil }
        if let entry = entries.withLockedValue({ $0.map[path] }), entry.version == version { return entry }
        guard let buffer = Self.read(path, expected: version.size), FileVersion(path: path) == version else { return nil }
        let contentType = StaticFastPath.contentType(of: path)
        let entry = Entry(
            version: version, buffer: buffer,
            eTag: StaticFastPath.eTag(modifiedSeconds: version.modifiedSeconds, size: version.size),
            lastModified: NIOLockedValueBoxCache.format(Int(version.modifiedSeconds)),
            contentType: contentType)
        entries.withLockedValue { state in
            if let old = state.map.removeValue(forKey: path) { state.bytes -= old.buffer.readableBytes }
            // Over the bound: start afresh rather than track recency; small sites never get here.
            if state.bytes + buffer.readableBytes > maximumBytes {
                state.map.removeAll(keepingCapacity: true)
                state.bytes = 0
            }
            state.map[path] = entry
            state.bytes += buffer.readableBytes
        }
        return entry
    }

    private static func read(_ path: String, expected: Int) -> ByteBuffer? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = ByteBufferAllocator().buffer(capacity: expected)
        var total = 0
        while total < expected {
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: expected - total) { pointer in
                max(0, Glibc.read(fd, pointer.baseAddress, expected - total))
            }
            if count == 0 { break }
            total += count
        }
        return total == expected ? buffer : nil
    }
}
