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
            let size = Self.size(of: path)
            guard Self.satisfiable(range, size: size) else {
                return HTTPErrors.page(.rangeNotSatisfiable, "The requested range is not satisfiable.", headers: [.contentRange: "bytes */\(size)"])
            }
            // The file middleware reads "bytes=-N" as the first N+1 bytes; RFC 9110 means the
            // last N. Spell it out as an explicit range.
            if let suffix = Self.suffixLength(range) {
                var head = request.head
                head.headerFields[.range] = "bytes=\(max(0, size - suffix))-\(size - 1)"
                request = Request(head: head, body: request.body)
            }
        }
        return try await next(request, context)
    }

    static func size(of path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    /// N of a single suffix range `bytes=-N`.
    static func suffixLength(_ header: String) -> Int? {
        guard header.hasPrefix("bytes=-"), !header.contains(",") else { return nil }
        return Int(header.dropFirst("bytes=-".count).trimming(" "))
    }

    /// RFC 9110 14.1.2: a single `bytes=first-last`, `first-` or `-suffix`; unsatisfiable when
    /// it starts at or past the end (or asks for a zero-length suffix). Other forms are left
    /// to the file middleware (which serves the whole file).
    static func satisfiable(_ header: String, size: Int) -> Bool {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return true }
        let spec = header.dropFirst("bytes=".count).trimming(" ")
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return true }
        if parts[0].isEmpty {
            guard let suffix = Int(parts[1]) else { return true }
            return suffix > 0 && size > 0
        }
        guard let first = Int(parts[0]) else { return true }
        if let last = Int(parts[1]), last < first { return true }
        return first < size
    }
}


#if canImport(Glibc)
import Glibc
#endif
