import ArgumentParser
import Foundation
import InetCore
import InetSimple
import InetTFTP

#if canImport(Glibc)
import Glibc
#endif

struct TFTPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tftp",
        abstract: "Download or upload a file by TFTP: inetkit tftp get|put HOST[:PORT] FILE",
        discussion: "get writes FILE (or -o PATH) in the current folder; put sends the local FILE (or --as NAME).")

    @Argument(help: "get or put")
    var verb: String

    @Argument(help: "HOST[:PORT] (without a port, the TFTP port under the port rule).")
    var server: String

    @Argument(help: "The file's name on the server (get) or here (put).")
    var file: String

    @Option(name: .shortAndLong, help: "Where get writes the file (default: its name, in the current folder).")
    var output: String?

    @Option(name: .long, help: "The name put gives the file on the server (default: FILE's last component).")
    var `as`: String?

    @Option(name: .long, help: "Block size to ask for (8-65464; RFC 2348).")
    var blksize: Int?

    @Option(name: .long, help: "Blocks per window to ask for (1-65535; RFC 7440).")
    var windowsize: Int?

    @Flag(name: .long, help: "netascii mode (text: CR LF line ends on the wire).")
    var netascii = false

    @Option(name: .long, help: "Seconds before a packet is sent again.")
    var timeout = 1.0

    @Option(name: .long, help: "Port offset for a server without a port (default: 0 if this process may bind ports < 1024, else 10000).")
    var portOffset: Int?

    func validate() throws {
        guard verb == "get" || verb == "put" else { throw ValidationError("the first argument is get or put") }
        if let blksize { guard (8...65_464).contains(blksize) else { throw ValidationError("--blksize must be 8...65464") } }
        if let windowsize { guard (1...65_535).contains(windowsize) else { throw ValidationError("--windowsize must be 1...65535") } }
        guard timeout > 0, timeout <= 3600 else { throw ValidationError("--timeout must be 0...3600 s") }
    }

    func run() async throws {
        let target = try ServerAddress.parse(server, wellKnown: 69, portOffset: portOffset)
        var options = TFTPClient.Options()
        options.blockSize = blksize
        options.windowSize = windowsize
        options.netascii = netascii
        options.timeout = timeout
        let client = TFTPClient(host: target.host, port: target.port, options: options)
        let started = Date()
        do {
            if verb == "get" {
                let path = output ?? String(file.split(separator: "/").last ?? "download")
                let partial = path + ".part"
                let fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                guard fd >= 0 else { throw ValidationError("cannot write \(partial)") }
                let progress = isatty(2) == 1 ? TransferProgress(name: file) : nil
                let size: Int
                do {
                    size = try client.get(file, into: fd) { done, total in progress?.update(done, total) }
                    ftruncate(fd, off_t(size))
                    close(fd)
                } catch {
                    close(fd)
                    unlink(partial)
                    throw error
                }
                progress?.finish()
                guard rename(partial, path) == 0 else { throw ValidationError("cannot rename \(partial) to \(path)") }
                report(size, path, started)
            } else {
                let fd = open(file, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { throw ValidationError("cannot read \(file)") }
                defer { close(fd) }
                let size = Int(lseek(fd, 0, SEEK_END))
                guard size >= 0 else { throw ValidationError("cannot read \(file)") }
                let name = self.as ?? String(file.split(separator: "/").last ?? "upload")
                let progress = isatty(2) == 1 ? TransferProgress(name: name, total: size) : nil
                try client.put(name, from: fd, size: size) { done, total in progress?.update(done, total) }
                progress?.finish()
                report(size, "\(target)/\(name)", started)
            }
        } catch let error as TFTPClientError {
            FileHandle.standardError.write(Data("inetkit tftp: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    func report(_ size: Int, _ where_: String, _ started: Date) {
        let seconds = max(Date().timeIntervalSince(started), 1e-6)
        print(String(format: "%@: %d bytes in %.3f s (%.1f MB/s)", where_, size, seconds, Double(size) / seconds / 1e6))
    }
}
