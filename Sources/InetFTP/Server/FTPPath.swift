#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a path argument is refused.
enum FTPPathError: Error, Equatable, Sendable {
    /// NUL, CR or LF in the name (RFC 959 names travel on the Telnet control connection).
    case badCharacters
    /// The path would leave the user's root (through `..` or a symbolic link).
    case outside
    case notFound
}

/// A user's view of the file system: a real root folder, shown as `/`, and a current folder.
/// Every argument is resolved inside the root; `..` stops at `/`, and a symbolic link whose
/// target lies outside the root is refused.
struct FTPFileSystem: Sendable, Equatable {
    /// The root's real path (symbolic links resolved), without a trailing slash.
    let root: String
    /// The current folder as the user sees it ("/", "/docs").
    var current = "/"

    init?(root: String) {
        guard let real = FTPFileSystem.realPath(root) else { return nil }
        self.root = real == "/" ? "" : real
    }

    /// The virtual absolute path of `argument` (relative to `current`), normalised.
    func virtualPath(_ argument: String) throws(FTPPathError) -> String {
        guard !argument.utf8.contains(where: { $0 == 0 || $0 == 0x0A || $0 == 0x0D }) else { throw .badCharacters }
        let joined = argument.hasPrefix("/") ? argument : (current == "/" ? "/" : current + "/") + argument
        var parts: [Substring] = []
        for part in joined.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The real path for a virtual one, without checking that it exists.
    func realPath(virtual: String) -> String {
        virtual == "/" ? (root.isEmpty ? "/" : root) : root + virtual
    }

    /// Resolves an argument that must name something that exists: its virtual and real paths,
    /// refusing anything whose real location (links followed) is outside the root.
    func existing(_ argument: String) throws(FTPPathError) -> (virtual: String, real: String) {
        let virtual = try virtualPath(argument)
        let real = realPath(virtual: virtual)
        guard let resolved = Self.realPath(real) else {
            // A dangling link or a missing file: say which.
            var info = stat()
            if lstat(real, &info) == 0 { throw .outside }
            throw .notFound
        }
        guard contains(resolved) else { throw .outside }
        return (virtual, real)
    }

    /// Resolves an argument naming something to create (STOR, MKD, RNTO): its folder must
    /// exist inside the root, and the name itself must not be a link leading out.
    func creatable(_ argument: String) throws(FTPPathError) -> (virtual: String, real: String) {
        let virtual = try virtualPath(argument)
        guard virtual != "/" else { throw .outside }
        guard let slash = virtual.lastIndex(of: "/") else { throw .outside }
        let parentVirtual = slash == virtual.startIndex ? "/" : String(virtual[..<slash])
        let parent = try existing(parentVirtual)
        let real = realPath(virtual: virtual)
        var info = stat()
        if lstat(real, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK {
            guard let target = Self.realPath(real), contains(target) else { throw .outside }
        }
        _ = parent
        return (virtual, real)
    }

    private func contains(_ resolved: String) -> Bool {
        root.isEmpty || resolved == root || resolved.hasPrefix(root + "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
