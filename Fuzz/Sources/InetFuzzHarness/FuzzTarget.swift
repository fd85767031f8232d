#if DEBUG
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One fuzz target: a parser of peer (or operator) bytes, driven with arbitrary input, and
/// the properties that must hold for every input. A trap anywhere is a finding (libFuzzer
/// saves the input); a property that fails is returned as text, and the driver traps on it.
public struct FuzzTarget: Sendable {
    /// As `scripts/fuzz` and `inetkit-fuzz` name it, and the folder of its corpus.
    public let name: String
    /// What it parses, for `scripts/fuzz --list`.
    public let summary: String
    /// libFuzzer's `-max_len` for it (zone and config files are larger than packets).
    public let maximumLength: Int
    /// Runs one input; nil when every property held.
    public let run: @Sendable ([UInt8]) -> String?

    public init(name: String, summary: String, maximumLength: Int = 4096, run: @escaping @Sendable ([UInt8]) -> String?) {
        self.name = name
        self.summary = summary
        self.maximumLength = maximumLength
        self.run = run
    }
}

/// Every target, by name.
public enum FuzzTargets {
    public static let all: [FuzzTarget] = [
        DNSTargets.message, DNSTargets.reply, DNSTargets.zone,
        SNMPTargets.message, SNMPTargets.reply,
        HTTPTargets.range, HTTPTargets.path, HTTPTargets.request, HTTPTargets.headScan,
        MailTargets.address, MailTargets.message,
        FTPTargets.hostPort, FTPTargets.path,
        ConfigTargets.config, ConfigTargets.regionListing,
        SimpleTargets.datagram,
        TimeWhoTargets.ntp, TimeWhoTargets.finger, TimeWhoTargets.ident,
        TFTPTargets.packet,
        SyslogTargets.message,
    ] + SessionTargets.all

    public static func named(_ name: String) -> FuzzTarget? {
        all.first { $0.name == name }
    }
}

/// Reads an input as a sequence of choices and the rest as payload (the usual way to let one
/// input pick options as well as bytes).
struct FuzzInput {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: [UInt8]) {
        self.bytes = bytes[...]
    }

    /// The next byte, or 0 when the input is used up.
    mutating func byte() -> UInt8 {
        bytes.popFirst() ?? 0
    }

    mutating func bool() -> Bool {
        byte() & 1 == 1
    }

    /// A 16-bit number, big-endian.
    mutating func uint16() -> Int {
        Int(byte()) << 8 | Int(byte())
    }

    /// Everything left.
    mutating func rest() -> [UInt8] {
        defer { bytes = [] }
        return Array(bytes)
    }
}

/// A folder made once per process for targets that need files: a site with a file, a folder,
/// a link inside and links leading out.
enum FuzzSandbox {
    static let root: String = {
        var template = Array("/tmp/inetkit-fuzz-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let root = made.map { String(cString: $0) } ?? "/tmp/inetkit-fuzz"
        mkdir(root + "/public", 0o755)
        mkdir(root + "/public/docs", 0o755)
        mkdir(root + "/outside", 0o755)
        write(root + "/public/index.html", "<h1>index</h1>\n")
        write(root + "/public/docs/a.txt", "0123456789abcdef")
        write(root + "/outside/secret.txt", "secret")
        symlink("docs/a.txt", root + "/public/inside-link")
        symlink(root + "/outside", root + "/public/outdir")
        symlink(root + "/outside/secret.txt", root + "/public/out")
        symlink("/etc", root + "/public/etc-link")
        return root
    }()

    static var site: String { root + "/public" }

    private static func write(_ path: String, _ text: String) {
        guard let file = fopen(path, "w") else { return }
        fputs(text, file)
        fclose(file)
    }

    /// Whether `path` is the site folder or inside it.
    static func insideSite(_ path: String, root: String) -> Bool {
        path == root || path.hasPrefix(root + "/")
    }
}
/// Whether bytes are one JSON object (what every event must be, whatever a peer sent).
enum FuzzJSON {
    static func isObject(_ bytes: [UInt8]) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) is [String: Any]
    }
}
#endif
