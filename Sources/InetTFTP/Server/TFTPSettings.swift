#if canImport(Glibc)
import Glibc
#endif
import InetCore

/// `services.tftp`: where files come from and go to, and the limits of each transfer.
public struct TFTPSettings: Sendable, Equatable {
    public static let keys: Set<String> = [
        "root", "write", "upload_dir", "overwrite", "max_upload_bytes", "max_blksize", "max_windowsize", "timeout", "retries",
        "max_transfers", "max_transfers_per_source", "max_netascii_bytes",
    ]

    /// Files that RRQ reads (default `<data_dir>/public`, the folder HTTP and anonymous FTP serve).
    public var root: String
    /// Whether WRQ is accepted at all.
    public var write = false
    /// Where uploads land (default `<data_dir>/tftp-uploads`), never in `root`.
    public var uploadDirectory: String
    public var overwrite = false
    public var maximumUploadBytes = 100 << 20
    public var maximumBlockSize = 65_464
    public var maximumWindowSize = 64
    /// Seconds before an unanswered window is sent again (a client's `timeout` option wins).
    public var timeout = 1.0
    public var retries = 5
    public var maximumTransfers = 256
    public var maximumTransfersPerSource = 64
    /// netascii reads convert the whole file in memory: at most this big.
    public var maximumNetASCIIBytes = 16 << 20

    public init(root: String, uploadDirectory: String) {
        self.root = root
        self.uploadDirectory = uploadDirectory
    }

    init(options: ServiceOptions) throws(ConfigError) {
        self.init(root: try options.path("root", default: "public"), uploadDirectory: try options.path("upload_dir", default: "tftp-uploads"))
        let reader = options.reader
        if let value = try reader?.bool("write") { write = value }
        if let value = try reader?.bool("overwrite") { overwrite = value }
        if let value = try reader?.int("max_upload_bytes", range: 0...(1 << 40)) { maximumUploadBytes = value }
        if let value = try reader?.int("max_blksize", range: 8...65_464) { maximumBlockSize = value }
        if let value = try reader?.int("max_windowsize", range: 1...1024) { maximumWindowSize = value }
        if let value = try reader?.seconds("timeout", range: 0.01...255) { timeout = value }
        if let value = try reader?.int("retries", range: 0...100) { retries = value }
        if let value = try reader?.int("max_transfers", range: 1...100_000) { maximumTransfers = value }
        if let value = try reader?.int("max_transfers_per_source", range: 1...100_000) { maximumTransfersPerSource = value }
        if let value = try reader?.int("max_netascii_bytes", range: 0...(1 << 30)) { maximumNetASCIIBytes = value }
    }
}

/// Turning a requested name into a file under a root: relative names only, no `..`, no control
/// characters, and (checked on the file system) nothing that a symlink leads out of the root.
public enum TFTPPath {
    /// The relative path a request names, or nil when the name is refused outright.
    public static func relative(_ name: [UInt8]) -> String? {
        guard !name.isEmpty, name.count <= 512, name.first != UInt8(ascii: "/"), name.allSatisfy({ $0 >= 0x20 && $0 != 0x7f && $0 != UInt8(ascii: "\\") }) else { return nil }
        let text = String(decoding: name, as: UTF8.self)
        guard Array(text.utf8) == name else { return nil }  // not UTF-8
        let parts = text.split(separator: "/", omittingEmptySubsequences: true)
        guard !parts.isEmpty, !parts.contains(where: { $0 == ".." || $0 == "." }) else { return nil }
        return parts.joined(separator: "/")
    }

    /// The real path of `relative` under `root` if it stays inside it (symlinks resolved).
    public static func contained(_ relative: String, in root: String) -> String? {
        guard let realRoot = realPath(root), let real = realPath(root + "/" + relative) else { return nil }
        return real == realRoot || real.hasPrefix(realRoot == "/" ? "/" : realRoot + "/") ? real : nil
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
