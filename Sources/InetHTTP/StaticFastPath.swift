import Hummingbird
import NIOCore
import NIOHTTP1

/// Answers the commonest requests of a static site on the event loop, without the async
/// router: GET or HEAD of a whole file, without Range or If-Modified-Since. Small files come
/// from the file cache; larger ones are sent with sendfile(2) (a NIO FileRegion: zero-copy,
/// written as fast as the socket takes it, never read into memory). Everything else
/// (folders, ranges, status pages, other methods) goes the full way through Hummingbird.
/// The answer is the one FileMiddleware would give: same ETag, Last-Modified, Content-Type.
struct StaticFastPath: Sendable {
    let root: SiteRoot
    let statusPath: String
    let cache: FileCache

    struct Answer {
        var head: HTTPResponseHead
        var body: Body

        enum Body {
            case none
            case buffer(ByteBuffer)
            /// An open file to send whole; closed once written (or the connection ends).
            case file(NIOFileHandle, size: Int)

            var count: Int {
                switch self {
                case .none: 0
                case .buffer(let buffer): buffer.readableBytes
                case .file(_, let size): size
                }
            }
        }
    }

    func answer(_ request: HTTPRequestHead) -> Answer? {
        guard request.method == .GET || request.method == .HEAD else { return nil }
        let headers = request.headers
        guard !headers.contains(name: "range"), !headers.contains(name: "if-range"), !headers.contains(name: "if-modified-since"),
              !headers.contains(name: "transfer-encoding"), (headers.first(name: "content-length") ?? "0") == "0" else { return nil }
        var path = Substring(request.uri)
        if let query = path.firstIndex(of: "?") { path = path[..<query] }
        guard path.last != "/", path != Substring(statusPath), !path.hasPrefix(statusPath + "/"),
              case .success(let decoded) = SitePath.check(rawPath: path),
              case .found(let file, false) = SitePath.resolve(decoded, root: root.path) else { return nil }
        let size: Int
        let eTag: String
        let lastModified: String
        let contentType: String?
        var cached: ByteBuffer?
        if let entry = cache.entry(of: file) {
            cached = entry.buffer
            size = entry.buffer.readableBytes
            (eTag, lastModified, contentType) = (entry.eTag, entry.lastModified, entry.contentType)
        } else {
            guard let version = FileVersion(path: file), !version.isDirectory else { return nil }
            size = version.size
            eTag = Self.eTag(modifiedSeconds: version.modifiedSeconds, size: size)
            lastModified = NIOLockedValueBoxCache.format(Int(version.modifiedSeconds))
            contentType = Self.contentType(of: file)
        }
        var fields = HTTPHeaders()
        fields.reserveCapacity(8)
        fields.add(name: "Content-Length", value: String(size))
        fields.add(name: "Last-Modified", value: lastModified)
        fields.add(name: "ETag", value: eTag)
        fields.add(name: "Accept-Ranges", value: "bytes")
        if let contentType { fields.add(name: "Content-Type", value: contentType) }
        fields.add(name: "Server", value: "InetKit")
        fields.add(name: "Date", value: HTTPDate.now())
        if headers[canonicalForm: "if-none-match"].contains(where: { $0 == Substring(eTag) }) {
            return Answer(head: HTTPResponseHead(version: .http1_1, status: .notModified, headers: fields), body: .none)
        }
        let head = HTTPResponseHead(version: .http1_1, status: .ok, headers: fields)
        if request.method == .HEAD { return Answer(head: head, body: .none) }
        if let cached { return Answer(head: head, body: .buffer(cached)) }
        // A short blocking open(2) on the event loop, as nginx does; the bytes go by sendfile.
        // A file the server may see but not read (another account's, mode 0600) is 403, as
        // nginx answers it, never a 200 with no body.
        let handle: NIOFileHandle
        do {
            handle = try NIOFileHandle(_deprecatedPath: file)
        } catch {
            let body = ByteBuffer(string: "403 Forbidden\n")
            var refused = HTTPHeaders()
            refused.add(name: "Content-Length", value: String(body.readableBytes))
            refused.add(name: "Content-Type", value: "text/plain; charset=utf-8")
            refused.add(name: "Server", value: "InetKit")
            refused.add(name: "Date", value: HTTPDate.now())
            return Answer(head: HTTPResponseHead(version: .http1_1, status: .forbidden, headers: refused), body: .buffer(body))
        }
        return Answer(head: head, body: .file(handle, size: size))
    }

    /// The answer for a raw request path (the target up to `?`), for `HTTPFastHandler`: a
    /// regular file under the root (a folder's `index.html` for a path ending in `/`), cached
    /// if small. Nil when the full server must answer (a status page, a folder without index,
    /// anything missing, refused or unreadable: its error pages are the full server's).
    func answer(rawPath path: Substring) -> FastAnswer? {
        guard path != Substring(statusPath), !path.hasPrefix(statusPath + "/"),
              case .success(var decoded) = SitePath.check(rawPath: path) else { return nil }
        if decoded.hasSuffix("/") { decoded += "index.html" }
        guard case .found(let file, false) = SitePath.resolve(decoded, root: root.path) else { return nil }
        if let entry = cache.entry(of: file) {
            return FastAnswer(body: .cached(entry.buffer), size: entry.buffer.readableBytes, eTag: entry.eTag,
                              lastModified: entry.lastModified, contentType: entry.contentType)
        }
        guard let version = FileVersion(path: file), !version.isDirectory else { return nil }
        return FastAnswer(body: .file(path: file, size: version.size), size: version.size,
                          eTag: Self.eTag(modifiedSeconds: version.modifiedSeconds, size: version.size),
                          lastModified: NIOLockedValueBoxCache.format(Int(version.modifiedSeconds)),
                          contentType: Self.contentType(of: file))
    }

    static func contentType(of path: String) -> String? {
        guard let dot = path.lastIndex(of: ".") else { return nil }
        return MediaType.getMediaType(forExtension: String(path[path.index(after: dot)...]))?.description
    }

    /// FileMiddleware's weak ETag: "<seconds as Double>-<size>" folded into 16 bytes, in hex.
    static func eTag(modifiedSeconds: Int64, size: Int) -> String {
        let string = String(describing: Double(modifiedSeconds)) + "-" + String(size)
        var bytes = [UInt8](repeating: 0, count: 16)
        var index = 0
        for c in string.utf8 {
            bytes[index] ^= c
            index = (index + 1) % 16
        }
        let hex: [Character] = Array("0123456789abcdef")
        return "W/\"" + String(bytes.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }) + "\""
    }
}
