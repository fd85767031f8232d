#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers

/// Turns a request path into a file under the site root, or says why it may not.
///
/// Every escape ends in 403 or 404, never a file outside the root: `..` segments (also
/// percent-encoded, `%2e%2e`), backslashes, NUL bytes and other control characters are
/// refused (403); the resolved path, symlinks followed, must stay inside the root (else 404,
/// as if it did not exist). `%2f` decodes to `/`, as nginx treats it.
public enum SitePath {
    public enum Outcome: Error, Equatable, Sendable {
        /// An existing file or folder inside the root; `path` is its resolved absolute path.
        case found(path: String, isDirectory: Bool)
        case notFound
        case forbidden(String)
        case badRequest(String)
    }

    /// Decodes `%XX` escapes; nil when an escape is malformed.
    public static func percentDecode(_ text: Substring) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Checks the decoded path of a request target (without its query) before any file is touched.
    public static func check(rawPath: Substring) -> Result<String, Outcome> {
        guard rawPath.first == "/" else { return .failure(.badRequest("the request target must start with /")) }
        guard let bytes = percentDecode(rawPath) else { return .failure(.badRequest("malformed percent-encoding")) }
        guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7f }) else { return .failure(.forbidden("control character in path")) }
        guard !bytes.contains(UInt8(ascii: "\\")) else { return .failure(.forbidden("backslash in path")) }
        guard let decoded = String(validating: bytes, as: UTF8.self) else { return .failure(.badRequest("path is not UTF-8")) }
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: true) where segment == ".." || segment == "." {
            return .failure(.forbidden("'\(segment)' segment in path"))
        }
        return .success(decoded)
    }

    /// Resolves a checked, decoded path inside `root` (itself resolved, no trailing slash).
    /// A resolution is remembered for the rest of the current second: one request asks for
    /// the same path several times, and a busy site for the same few paths all the time.
    public static func resolve(_ decoded: String, root: String) -> Outcome {
        let candidate = root + (decoded.hasPrefix("/") ? decoded : "/" + decoded)
        let now = Int(time(nil))
        if let remembered = recent.withLockedValue({ $0.second == now ? $0.outcomes[candidate] : nil }) { return remembered }
        let outcome = resolveNow(candidate, root: root)
        recent.withLockedValue { state in
            if state.second != now || state.outcomes.count >= 4096 { state = (now, [:]) }
            state.outcomes[candidate] = outcome
        }
        return outcome
    }

    private static let recent = NIOLockedValueBox<(second: Int, outcomes: [String: Outcome])>((0, [:]))

    private static func resolveNow(_ candidate: String, root: String) -> Outcome {
        guard let resolved = realPath(candidate) else { return .notFound }
        guard resolved == root || resolved.hasPrefix(root + "/") else { return .notFound }
        var info = stat()
        guard stat(resolved, &info) == 0 else { return .notFound }
        let isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
        guard isDirectory || (info.st_mode & S_IFMT) == S_IFREG else { return .forbidden("not a regular file") }
        // Another account's file (mode 0600, say): the server runs unprivileged and may see it
        // but not read it; every path (fast, Range, HEAD) answers 403 for it, as nginx does.
        if !isDirectory && access(resolved, R_OK) != 0 { return .forbidden("the server may not read this file") }
        return .found(path: resolved, isDirectory: isDirectory)
    }

    /// realpath(3): the absolute path with every symlink followed; nil if it does not exist.
    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
