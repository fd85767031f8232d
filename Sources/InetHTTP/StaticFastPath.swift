import Hummingbird
import NIOCore
import NIOHTTP1

/// Answers the commonest request of a static site on the event loop, without the async
/// router: GET or HEAD of a small file (one the file cache holds), without Range or
/// If-Modified-Since. Everything else (folders, ranges, status pages, large files, other
/// methods) goes the full way through Hummingbird. The answer is the one FileMiddleware
/// would give, byte for byte in its headers: same ETag, Last-Modified, Content-Type.
struct StaticFastPath: Sendable {
    let root: SiteRoot
    let statusPath: String
    let cache: FileCache

    struct Answer {
        var head: HTTPResponseHead
        var body: ByteBuffer?
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
              case .found(let file, false) = SitePath.resolve(decoded, root: root.path),
              let entry = cache.entry(of: file) else { return nil }
        let buffer = entry.buffer
        let eTag = entry.eTag
        var fields = HTTPHeaders()
        fields.reserveCapacity(8)
        fields.add(name: "Content-Length", value: String(buffer.readableBytes))
        fields.add(name: "Last-Modified", value: entry.lastModified)
        fields.add(name: "ETag", value: eTag)
        fields.add(name: "Accept-Ranges", value: "bytes")
        if let contentType = entry.contentType { fields.add(name: "Content-Type", value: contentType) }
        fields.add(name: "Server", value: "InetKit")
        fields.add(name: "Date", value: HTTPDate.now())
        if headers[canonicalForm: "if-none-match"].contains(where: { $0 == Substring(eTag) }) {
            return Answer(head: HTTPResponseHead(version: .http1_1, status: .notModified, headers: fields), body: nil)
        }
        return Answer(head: HTTPResponseHead(version: .http1_1, status: .ok, headers: fields), body: request.method == .HEAD ? nil : buffer)
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
