#if DEBUG
import NIOCore
@testable import InetFTP

enum FTPTargets {
    /// PORT and EPRT: what parses has a port in 1...65535 and can be made a socket address
    /// without a trap.
    static let hostPort = FuzzTarget(name: "ftp-hostport", summary: "FTP PORT and EPRT arguments", maximumLength: 256) { bytes in
        var input = FuzzInput(bytes)
        let extended = input.bool()
        let text = String(decoding: input.rest(), as: UTF8.self)
        guard let target = try? (extended ? FTPHostPort.parseEPRT(text) : FTPHostPort.parsePORT(text)) else { return nil }
        guard (1...65_535).contains(target.port) else { return "port \(target.port) accepted" }
        _ = try? SocketAddress(ipAddress: target.host, port: target.port)
        return nil
    }

    static let files = FTPFileSystem(root: FuzzSandbox.site)!

    /// Path arguments resolved for a user whose root is the site folder: whatever is found or
    /// may be created is inside it.
    static let path = FuzzTarget(name: "ftp-path", summary: "FTP path arguments: .., links, encodings, resolved in a root", maximumLength: 1024) { bytes in
        var input = FuzzInput(bytes)
        var files = FTPTargets.files
        files.current = input.bool() ? "/docs" : "/"
        let argument = String(decoding: input.rest(), as: UTF8.self)
        guard let virtual = try? files.virtualPath(argument) else { return nil }
        guard virtual.hasPrefix("/"), !virtual.split(separator: "/").contains("..") else { return "virtual path \(virtual)" }
        for resolved in [try? files.existing(argument), try? files.creatable(argument)] {
            guard let real = resolved?.real else { continue }
            let canonical = FTPFileSystem.realPath(real) ?? real
            guard FuzzSandbox.insideSite(canonical, root: files.root) || FuzzSandbox.insideSite(real, root: files.root) else {
                return "\(argument) resolved to \(real), outside \(files.root)"
            }
        }
        return nil
    }
}
#endif
