import Hummingbird
import HTTPTypes

/// Runs before the file middleware: refuses escapes (403), answers other methods on existing
/// files with 405 and `Allow`, and answers unsatisfiable single ranges with 416.
struct SiteGuard<Context: RequestContext>: RouterMiddleware {
    let root: SiteRoot
    let statusPath: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let rawPath = request.uri.path
        if rawPath == statusPath || rawPath.hasPrefix(statusPath + "/") { return try await next(request, context) }
        let decoded: String
        switch SitePath.check(rawPath: Substring(rawPath)) {
        case .success(let path): decoded = path
        case .failure(.forbidden(let why)): return HTTPErrors.page(.forbidden, "Forbidden: \(why).")
        case .failure(.badRequest(let why)): return HTTPErrors.page(.badRequest, "Bad request: \(why).")
        case .failure: return HTTPErrors.page(.notFound, "Not found.")
        }
        let target = SitePath.resolve(decoded, root: root.path)
        if case .forbidden(let why) = target { return HTTPErrors.page(.forbidden, "Forbidden: \(why).") }
        guard request.method == .get || request.method == .head else {
            guard case .found = target else { return HTTPErrors.page(.notFound, "Not found.") }
            return HTTPErrors.page(.methodNotAllowed, "\(request.method) is not allowed here; use GET or HEAD.", headers: [.allow: "GET, HEAD"])
        }
        var request = request
        if case .found(let path, false) = target, let range = request.headers[.range] {
            // Hummingbird's own Range parsing is loose (it reads "bytes=-N" as the first N+1
            // bytes, and its bounds are not checked against the file): the header is decided
            // here and handed on in one explicit form, or removed.
            let size = Self.size(of: path)
            var head = request.head
            switch ByteRange.decide(range, size: size) {
            case .unsatisfiable:
                return HTTPErrors.page(.rangeNotSatisfiable, "The requested range is not satisfiable.", headers: [.contentRange: "bytes */\(size)"])
            case .ignore:
                head.headerFields[.range] = nil
            case .satisfiable(let bytes):
                head.headerFields[.range] = "bytes=\(bytes.lowerBound)-\(bytes.upperBound)"
            }
            request = Request(head: head, body: request.body)
        }
        return try await next(request, context)
    }

    static func size(of path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }
}


#if canImport(Glibc)
import Glibc
#endif
