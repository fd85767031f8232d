import Hummingbird
import Logging
import NIOPosix

/// Hummingbird's local file system, but no path that resolves outside the root (through `..`
/// or a symlink) is ever handed to it.
struct SiteFileProvider: FileProvider {
    typealias FileAttributes = LocalFileSystem.FileAttributes
    typealias FileIdentifier = String

    /// The resolved root folder, without a trailing slash.
    let root: SiteRoot
    private let files: LocalFileSystem

    init(root: SiteRoot, threadPool: NIOThreadPool, logger: Logger) {
        self.root = root
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
        try await files.getAttributes(id: id)
    }

    func loadFile(id: String, context: some RequestContext) async throws -> ResponseBody {
        try await files.loadFile(id: id, context: context)
    }

    func loadFile(id: String, range: ClosedRange<Int>, context: some RequestContext) async throws -> ResponseBody {
        try await files.loadFile(id: id, range: range, context: context)
    }
}
