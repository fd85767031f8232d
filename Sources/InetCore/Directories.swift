#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A folder that could not be created.
public struct DirectoryError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var code: Int32

    public var description: String { "cannot create \(path): \(String(cString: strerror(code)))" }
}

/// Creates `path` and any missing parents (like `mkdir -p`); existing folders are fine.
public func createDirectories(_ path: String, mode: mode_t = 0o755) throws(DirectoryError) {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/" + component
        if mkdir(current, mode) != 0, errno != EEXIST { throw DirectoryError(path: current, code: errno) }
    }
}

/// This machine's host name (gethostname), or `localhost` when it has none.
public func systemHostName() -> String {
    var name = [CChar](repeating: 0, count: 256)
    gethostname(&name, name.count - 1)
    let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return host.isEmpty ? "localhost" : host
}
