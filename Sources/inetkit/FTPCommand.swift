import ArgumentParser
import Foundation
import InetCore
import InetFTP
import NIOConcurrencyHelpers
import NIOCore

struct FTPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ftp",
        abstract: "List, download, upload, delete and create over FTP: URLs like ftp://user:pass@host:port/path.",
        discussion: "Passive data connections by default (EPSV, then PASV); --active uses EPRT/PORT. Without a user, anonymous.",
        subcommands: [FTPListCommand.self, FTPGetCommand.self, FTPPutCommand.self, FTPRemoveCommand.self, FTPMakeDirectoryCommand.self])
}

struct FTPOptions: ParsableArguments {
    @Flag(name: .long, help: "Active mode: the server connects back (EPRT/PORT).")
    var active = false

    @Option(name: .long, help: "Transfers at once (URLs from one or several servers).")
    var concurrency = 1

    @Option(name: .long, help: "Seconds without progress before giving up.")
    var timeout = 30.0

    @Option(name: .long, help: "Port offset for URLs without a port (default: 0 if this process may bind ports < 1024, else 10000).")
    var portOffset: Int?

    @Flag(name: .long, help: "Show the control dialogue on standard error.")
    var trace = false

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
    }

    func url(_ text: String) throws -> FTPURL {
        guard let url = FTPURL(text, defaultPort: PortPlan.defaultPort(wellKnown: 21, explicitOffset: portOffset)) else {
            throw ValidationError("'\(text)' is not an ftp:// URL")
        }
        return url
    }

    var tracer: (@Sendable (String) -> Void)? {
        guard trace else { return nil }
        return { @Sendable line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    /// Runs `work` for each item, `concurrency` at once; prints failures; exit 1 if any.
    func each<Item: Sendable>(_ items: [Item], label: @escaping @Sendable (Item) -> String, _ work: @escaping @Sendable (Item) async throws -> Void) async throws {
        let succeeded = await concurrentMap(items, limit: concurrency) { item -> Bool in
            do {
                try await work(item)
                return true
            } catch {
                FileHandle.standardError.write(Data("inetkit ftp: \(label(item)): \(error)\n".utf8))
                return false
            }
        }
        if succeeded.contains(false) { throw ExitCode(1) }
    }
}


struct FTPListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List folders (LIST; --short for names only).")
    @Argument(help: "ftp:// URLs of folders or files.") var urls: [String]
    @Flag(name: .long, help: "Names only (NLST).") var short = false
    @OptionGroup var options: FTPOptions

    func run() async throws {
        let options = self.options
        let targets = try urls.map { try options.url($0) }
        let verb = short ? "NLST" : "LIST"
        let several = targets.count > 1
        try await options.each(targets, label: { "\($0.host):\($0.port)\($0.path)" }) { url in
            var text = ByteBuffer()
            try await FTPClientSession.session(url, active: options.active, timeout: options.timeout, trace: options.tracer) { session in
                try await session.download("\(verb) \(url.path)") { chunk in
                    var chunk = chunk
                    text.writeBuffer(&chunk)
                }
            }
            let body = String(buffer: text).replacingOccurrences(of: "\r\n", with: "\n")
            print((several ? "\(url.host):\(url.port)\(url.path):\n" : "") + body, terminator: "")
        }
    }
}

struct FTPGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Download files (into the current folder, or -o).")
    @Argument(help: "ftp:// URLs of files.") var urls: [String]
    @Option(name: .shortAndLong, help: "Output file (one URL), or folder (several).") var output: String?
    @OptionGroup var options: FTPOptions

    func run() async throws {
        let options = self.options
        let targets = try urls.map { try options.url($0) }
        var isFolder: ObjCBool = false
        let outputIsFolder = output.map { FileManager.default.fileExists(atPath: $0, isDirectory: &isFolder) && isFolder.boolValue } ?? true
        guard targets.count == 1 || outputIsFolder else { throw ValidationError("with several URLs, -o must be a folder") }
        let output = self.output
        try await options.each(targets, label: { "\($0.host):\($0.port)\($0.path)" }) { url in
            let name = String(url.path.split(separator: "/").last ?? "download")
            let path = output.map { outputIsFolder ? $0 + "/" + name : $0 } ?? name
            let partial = path + ".part"
            guard FileManager.default.createFile(atPath: partial, contents: nil), let handle = FileHandle(forWritingAtPath: partial) else {
                throw ValidationError("cannot write \(partial)")
            }
            defer { try? handle.close() }
            try await FTPClientSession.session(url, active: options.active, timeout: options.timeout, trace: options.tracer) { session in
                let progress = isatty(2) == 1 ? TransferProgress(name: name, total: await session.size(url.path)) : nil
                try await session.download("RETR \(url.path)") { chunk in
                    chunk.withUnsafeReadableBytes { handle.write(Data($0)) }
                    progress?.add(chunk.readableBytes)
                }
                progress?.finish()
            }
            try handle.close()
            _ = try? FileManager.default.removeItem(atPath: path)
            try FileManager.default.moveItem(atPath: partial, toPath: path)
        }
    }
}

struct FTPPutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "put", abstract: "Upload files: inetkit ftp put FILE... URL (a folder URL ending in /, or a file URL for one file).")
    @Argument(help: "Local files, then the target ftp:// URL.") var arguments: [String]
    @OptionGroup var options: FTPOptions

    func run() async throws {
        guard arguments.count >= 2 else { throw ValidationError("give FILE... URL") }
        let target = try options.url(arguments.last!)
        let files = Array(arguments.dropLast())
        guard files.count == 1 || target.path.hasSuffix("/") else { throw ValidationError("with several files the URL must be a folder (end in /)") }
        let options = self.options
        try await options.each(files, label: { $0 }) { file in
            guard let handle = FileHandle(forReadingAtPath: file) else { throw ValidationError("cannot read \(file)") }
            defer { try? handle.close() }
            let name = (file as NSString).lastPathComponent
            let remote = target.path.hasSuffix("/") ? target.path + name : target.path
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? nil
            let progress = isatty(2) == 1 ? TransferProgress(name: name, total: size) : nil
            try await FTPClientSession.session(target, active: options.active, timeout: options.timeout, trace: options.tracer) { session in
                try await session.upload("STOR \(remote)") {
                    let data = handle.readData(ofLength: 256 * 1024)
                    guard !data.isEmpty else { return nil }
                    progress?.add(data.count)
                    return ByteBuffer(bytes: data)
                }
            }
            progress?.finish()
        }
    }
}

struct FTPRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete files (DELE).")
    @Argument(help: "ftp:// URLs of files.") var urls: [String]
    @OptionGroup var options: FTPOptions

    func run() async throws {
        try await options.runEach("DELE", urls)
    }
}

struct FTPMakeDirectoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mkdir", abstract: "Create folders (MKD).")
    @Argument(help: "ftp:// URLs of folders.") var urls: [String]
    @OptionGroup var options: FTPOptions

    func run() async throws {
        try await options.runEach("MKD", urls)
    }
}

extension FTPOptions {
    /// One command (DELE, MKD) on the path of each URL.
    func runEach(_ verb: String, _ urls: [String]) async throws {
        let options = self
        let targets = try urls.map { try options.url($0) }
        try await options.each(targets, label: { $0.path }) { url in
            try await FTPClientSession.session(url, active: options.active, timeout: options.timeout, trace: options.tracer) { session in
                _ = try await session.command("\(verb) \(url.path)", expect: 2)
            }
        }
    }
}
