import Crypto
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// A running SHA-256 (swift-crypto), safe to feed from the thread pool one chunk at a time:
/// what the FTP and TFTP servers report of every file they move.
public final class SHA256Digest: Sendable {
    private let hasher = NIOLockedValueBox(SHA256())

    public init() {}

    public func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.withLockedValue { $0.update(bufferPointer: bytes) }
    }

    /// The digest as 64 lowercase hex digits.
    public func finish() -> String {
        Self.hex(hasher.withLockedValue { $0.finalize() })
    }

    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The SHA-256 of a file, read in 64 KiB chunks (call it off the event loop); nil when it is
    /// larger than `limit` or cannot be read.
    public static func file(_ path: String, limit: Int) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let size = lseek(fd, 0, SEEK_END)
        guard size >= 0, size <= limit, lseek(fd, 0, SEEK_SET) == 0 else { return nil }
        var hasher = SHA256()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            chunk.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        return hex(hasher.finalize())
    }
}
