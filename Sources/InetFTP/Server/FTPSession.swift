#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import InetLine
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// One FTP control connection (RFC 959 5.4 command-reply sequences), on its event loop.
final class FTPSession: LineSession {
    let settings: FTPSettings
    let tls: NIOSSLContext?
    let counter: AddressConnectionCounter
    let logger: Logger

    private var eventLoop: (any EventLoop)?
    private var peer: SocketAddress?
    private var local: SocketAddress?
    private var countedAddress: String?
    private var pendingUser: String?
    private(set) var account: FTPUser?
    private(set) var files: FTPFileSystem?
    private var loginFailures = 0
    private var errors: LineErrorBudget
    private var ascii = false
    private var restart = 0
    private var renameFrom: (virtual: String, real: String)?
    private var passive: PassiveListener?
    private var active: SocketAddress?
    private var epsvAll = false
    private var tlsActive = false
    private var protectData = false
    /// The data connection of the transfer in progress (closed by ABOR).
    private var transferChannel: (any Channel)?
    private var aborted = false

    init(settings: FTPSettings, tls: NIOSSLContext?, counter: AddressConnectionCounter, logger: Logger) {
        self.settings = settings
        self.tls = tls
        self.counter = counter
        self.logger = logger
        errors = LineErrorBudget(limit: settings.maxErrors, closing: "421 Too many errors; closing.")
    }

    var maximumLineLength: Int { FTPSettings.maximumLineLength }

    var timeout: (seconds: Double, reply: String) {
        (settings.commandTimeout, "421 Timeout: closing control connection.\r\n")
    }

    func start(context: LineSessionContext) -> [LineAction] {
        eventLoop = context.eventLoop
        peer = context.peer
        local = context.local
        let address = peer?.ipAddress ?? "?"
        guard counter.open(address, limit: settings.maxConnectionsPerAddress) else {
            return [.reply("421 Too many connections from your address.\r\n"), .close]
        }
        countedAddress = address
        return [.reply("220 InetKit FTP server ready.\r\n")]
    }

    func closed() {
        if let countedAddress { counter.close(countedAddress) }
        countedAddress = nil
        passive?.close()
        passive = nil
        transferChannel?.close(promise: nil)
    }

    func lineTooLong() -> [LineAction] {
        fail("500 Command line too long.")
    }

    private func reply(_ text: String) -> [LineAction] {
        [.reply(text + "\r\n")]
    }

    private func fail(_ text: String) -> [LineAction] {
        errors.fail(text)
    }

    /// The command and argument, with Telnet IP/Synch bytes that clients send before ABOR removed.
    private func parse(_ line: ByteBuffer) -> (String, String)? {
        var bytes = Array(line.readableBytesView)
        while let first = bytes.first, first >= 0xF0 { bytes.removeFirst() }
        guard !bytes.contains(0), let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let space = text.firstIndex(of: " ") ?? text.endIndex
        let verb = text[..<space].uppercased()
        let argument = space < text.endIndex ? String(text[text.index(after: space)...]) : ""
        return (verb, argument)
    }

    func receiveWhileBusy(line: ByteBuffer) -> [LineAction]? {
        guard let (verb, _) = parse(line) else { return nil }
        switch verb {
        case "ABOR":
            // The transfer's own reply (426) comes first, then 226 for the ABOR (RFC 959 4.1.3).
            aborted = true
            transferChannel?.close(promise: nil)
            passive?.close()
            return []
        case "STAT":
            return reply("213 Transfer in progress.")
        case "NOOP":
            return reply("200 NOOP ok.")
        default:
            return nil
        }
    }

    func receive(line: ByteBuffer, ending: LineEnding) -> [LineAction] {
        guard let (verb, argument) = parse(line) else { return fail("500 Bad characters in command.") }
        // Commands that need no login.
        switch verb {
        case "USER": return user(argument)
        case "PASS": return pass(argument)
        case "QUIT": return [.reply("221 Goodbye.\r\n"), .close]
        case "NOOP": return reply("200 NOOP ok.")
        case "SYST": return reply("215 UNIX Type: L8")
        case "FEAT": return features()
        case "HELP":
            return [.reply("214-The following commands are recognized:\r\n ABOR ACCT APPE AUTH CDUP CWD DELE EPRT EPSV FEAT HELP LIST MDTM MKD MLSD MLST\r\n MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT PWD QUIT REST RETR RMD RNFR RNTO SIZE STAT\r\n STOR STOU STRU SYST TYPE USER XCUP XCWD XMKD XPWD XRMD\r\n214 Help OK.\r\n")]
        case "OPTS":
            let upper = argument.uppercased()
            if upper == "UTF8 ON" || upper == "UTF-8 ON" { return reply("200 Always in UTF8 mode.") }
            if upper.hasPrefix("MLST") { return reply("200 MLST OPTS type;size;modify;perm;") }
            return fail("501 Option not understood.")
        case "AUTH":
            guard let _ = tls else { return fail("502 TLS is not configured.") }
            guard ["TLS", "TLS-C", "SSL"].contains(argument.uppercased()) else { return fail("504 Unknown AUTH type.") }
            guard !tlsActive else { return fail("503 Already using TLS.") }
            tlsActive = true
            return [.reply("234 Proceed with negotiation.\r\n"), .startTLS]
        case "PBSZ":
            guard tlsActive else { return fail("503 PBSZ needs AUTH TLS first.") }
            return reply("200 PBSZ=0")
        case "PROT":
            guard tlsActive else { return fail("503 PROT needs AUTH TLS first.") }
            switch argument.uppercased() {
            case "P": protectData = true; return reply("200 PROT now Private.")
            case "C": protectData = false; return reply("200 PROT now Clear.")
            default: return fail("536 Only C and P are supported.")
            }
        case "ACCT": return fail("502 ACCT not implemented.")
        default: break
        }
        guard let files, let account else {
            return fail(["ABOR", "CWD", "XCWD", "CDUP", "XCUP", "PWD", "XPWD", "LIST", "NLST", "RETR", "STOR", "STOU", "APPE", "DELE", "MKD", "XMKD",
                         "RMD", "XRMD", "RNFR", "RNTO", "TYPE", "MODE", "STRU", "PASV", "EPSV", "PORT", "EPRT", "REST", "STAT", "SIZE",
                         "MDTM", "MLST", "MLSD"].contains(verb) ? "530 Please login with USER and PASS." : "500 Unknown command.")
        }
        switch verb {
        case "PWD", "XPWD": return reply("257 \"\(files.current.replacingQuotes)\" is the current directory")
        case "CWD", "XCWD": return changeDirectory(argument)
        case "CDUP", "XCUP": return changeDirectory("..")
        case "TYPE":
            switch argument.uppercased() {
            case "I", "L 8", "L8": ascii = false; return reply("200 Switching to Binary mode.")
            case "A", "A N": ascii = true; return reply("200 Switching to ASCII mode.")
            default: return fail("504 TYPE not supported.")
            }
        case "MODE": return argument.uppercased() == "S" ? reply("200 Mode set to S.") : fail("504 Only stream mode is supported.")
        case "STRU": return argument.uppercased() == "F" ? reply("200 Structure set to F.") : fail("504 Only file structure is supported.")
        case "PASV": return passiveMode(extended: false, argument)
        case "EPSV": return passiveMode(extended: true, argument)
        case "PORT": return activeMode(argument, extended: false)
        case "EPRT": return activeMode(argument, extended: true)
        case "REST":
            guard (1...18).contains(argument.utf8.count), argument.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let offset = Int(argument) else { return fail("501 REST needs a byte offset.") }
            restart = offset
            return reply("350 Restart position accepted (\(offset)).")
        case "ABOR":
            passive?.close()
            passive = nil
            return reply("225 No transfer to abort.")
        case "SIZE": return size(argument)
        case "MDTM": return modificationTime(argument)
        case "MLST": return machineListing(argument)
        case "STAT":
            if argument.isEmpty {
                return [.reply("211-FTP server status:\r\n Logged in as \(account.name)\r\n TYPE: \(ascii ? "ASCII" : "BINARY")\r\n Data connection: \(passive != nil ? "passive" : active != nil ? "active" : "none")\r\n211 End of status\r\n")]
            }
            return statusListing(argument)
        case "LIST", "NLST", "MLSD": return listing(verb, argument)
        case "RETR": return retrieve(argument)
        case "STOR", "APPE", "STOU": return store(verb, argument)
        case "DELE", "MKD", "XMKD", "RMD", "XRMD", "RNFR", "RNTO": return change(verb, argument)
        default:
            return fail("500 Unknown command.")
        }
    }

    // MARK: - Login

    private func user(_ name: String) -> [LineAction] {
        guard account == nil else { return fail("530 Already logged in; this server does not change users.") }
        guard !name.isEmpty else { return fail("501 USER needs a name.") }
        pendingUser = name
        if ["anonymous", "ftp"].contains(name.lowercased()) {
            guard settings.anonymousRoot != nil else { return reply("331 Please specify the password.") }
            return reply("331 Anonymous login ok, send your e-mail address as password.")
        }
        return reply("331 Please specify the password.")
    }

    private func pass(_ password: String) -> [LineAction] {
        guard account == nil else { return reply("230 Already logged in.") }
        guard let name = pendingUser else { return fail("503 Login with USER first.") }
        pendingUser = nil
        if let user = settings.account(name), user.anonymous || user.password.map({ Secret.equal($0, password) }) == true,
           let files = FTPFileSystem(root: user.home) {
            account = user
            self.files = files
            logger.info("login", metadata: ["user": "\(user.name)", "peer": "\(peer?.ipAddress ?? "?")"])
            return reply("230 Login successful.")
        }
        loginFailures += 1
        let close = loginFailures >= settings.maxLoginFailures
        guard let loop = eventLoop else { return [] }
        logger.notice("failed login", metadata: ["user": "\(name)", "peer": "\(peer?.ipAddress ?? "?")"])
        let delay = TimeAmount.nanoseconds(Int64(settings.loginDelay * 1e9))
        let future = loop.assumeIsolated().scheduleTask(in: delay) { () -> [LineAction] in
            close ? [.reply("530 Login incorrect.\r\n"), .reply("421 Too many failed logins; closing.\r\n"), .close]
                : [.reply("530 Login incorrect.\r\n")]
        }.futureResult.assumeIsolated()
        return [.wait(future)]
    }

    private func features() -> [LineAction] {
        var lines = ["EPRT", "EPSV", "MDTM", "MLST type*;size*;modify*;perm*;", "PASV", "REST STREAM", "SIZE", "TVFS", "UTF8"]
        if tls != nil { lines += ["AUTH TLS", "PBSZ", "PROT"] }
        return [.reply("211-Features:\r\n" + lines.map { " \($0)\r\n" }.joined() + "211 End\r\n")]
    }

    // MARK: - Paths

    private func pathError(_ error: FTPPathError) -> [LineAction] {
        switch error {
        case .badCharacters: return fail("501 Invalid characters in the name.")
        case .outside: return fail("550 Permission denied.")
        case .notFound: return fail("550 No such file or directory.")
        }
    }

    private func changeDirectory(_ argument: String) -> [LineAction] {
        guard var files else { return [] }
        do {
            let (virtual, real) = try files.existing(argument.isEmpty ? "/" : argument)
            guard let entry = FTPEntry.info(real, name: ""), entry.isDirectory else { return fail("550 Not a directory.") }
            files.current = virtual
            self.files = files
            return reply("250 Directory successfully changed.")
        } catch {
            return pathError(error)
        }
    }

    private func size(_ argument: String) -> [LineAction] {
        do {
            let (_, real) = try files!.existing(argument)
            guard let entry = FTPEntry.info(real, name: ""), !entry.isDirectory else { return fail("550 Could not get file size.") }
            return reply("213 \(entry.size)")
        } catch {
            return pathError(error)
        }
    }

    private func modificationTime(_ argument: String) -> [LineAction] {
        do {
            let (_, real) = try files!.existing(argument)
            guard let entry = FTPEntry.info(real, name: "") else { return fail("550 Could not get file modification time.") }
            return reply("213 \(FTPEntry.factTime(entry.modified))")
        } catch {
            return pathError(error)
        }
    }

    private func machineListing(_ argument: String) -> [LineAction] {
        do {
            let (virtual, real) = try files!.existing(argument.isEmpty ? "." : argument)
            guard let entry = FTPEntry.info(real, name: virtual) else { return fail("550 No such file or directory.") }
            return [.reply("250-Listing \(virtual)\r\n \(entry.facts(writable: account!.writable, name: virtual))\r\n250 End\r\n")]
        } catch {
            return pathError(error)
        }
    }

    private func statusListing(_ argument: String) -> [LineAction] {
        do {
            let (_, real) = try files!.existing(argument)
            let text = Self.listingText("LIST", real: real, writable: account!.writable)
            return [.reply("213-Status follows:\r\n" + text + "213 End of status\r\n")]
        } catch {
            return pathError(error)
        }
    }

    /// Listing lines (CRLF-terminated) of a folder or a single file.
    private static func listingText(_ verb: String, real: String, writable: Bool, arguments: String = "") -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        guard let entry = FTPEntry.info(real, name: String(real.split(separator: "/").last ?? "")) else { return "" }
        let entries = entry.isDirectory ? (FTPEntry.list(real, all: arguments.contains("a")) ?? []) : [entry]
        switch verb {
        case "NLST": return entries.map { $0.name + "\r\n" }.joined()
        case "MLSD": return entries.map { $0.facts(writable: writable) + "\r\n" }.joined()
        default: return entries.map { $0.longFormat(now: Int(now.tv_sec)) + "\r\n" }.joined()
        }
    }

    // MARK: - Data connections

    private func passiveMode(extended: Bool, _ argument: String) -> [LineAction] {
        if extended, argument.uppercased() == "ALL" {
            epsvAll = true
            return reply("200 EPSV ALL ok.")
        }
        guard !(epsvAll && !extended) else { return fail("503 EPSV ALL is in force.") }
        guard let loop = eventLoop, let localIP = local?.ipAddress, let client = peer?.ipAddress else { return [] }
        if !extended, localIP.contains(":") { return fail("522 Use EPSV with IPv6.") }
        passive?.close()
        passive = nil
        active = nil
        let tls = protectData ? self.tls : nil
        let opened = PassiveListener.open(on: loop, host: localIP, ports: settings.passivePorts, client: client, tls: tls,
                                          stallTimeout: settings.dataTimeout)
        return [.wait(opened.assumeIsolated().map { listener -> [LineAction] in
            self.passive = listener
            if extended { return [.reply("229 Entering Extended Passive Mode (|||\(listener.port)|)\r\n")] }
            let announced = (self.settings.passiveAddress ?? localIP).replacingDots
            return [.reply("227 Entering Passive Mode (\(announced),\(listener.port >> 8),\(listener.port & 0xFF)).\r\n")]
        }.recover { _ in
            [.reply("425 Cannot open a passive port.\r\n")]
        })]
    }

    private func activeMode(_ argument: String, extended: Bool) -> [LineAction] {
        guard !epsvAll else { return fail("503 EPSV ALL is in force.") }
        let target: FTPHostPort
        do {
            target = extended ? try FTPHostPort.parseEPRT(argument) : try FTPHostPort.parsePORT(argument)
        } catch {
            switch error {
            case .family: return fail("522 Network protocol not supported, use (1,2)")
            case .syntax: return fail(extended ? "501 Bad EPRT argument." : "501 Bad PORT argument.")
            }
        }
        let (host, port) = (target.host, target.port)
        guard let address = try? SocketAddress(ipAddress: host, port: port) else { return fail("501 Bad address.") }
        // No FTP bounce (RFC 2577 3): only the client's own address, and no privileged port.
        guard address.ipAddress == peer?.ipAddress || Self.sameHost(address, peer) else {
            return fail("504 Data connections go only to the client's own address.")
        }
        guard port >= 1024 else { return fail("504 Ports below 1024 are refused.") }
        passive?.close()
        passive = nil
        active = address
        return reply("200 \(extended ? "EPRT" : "PORT") command successful. Consider using PASV.")
    }

    /// ::ffff:a.b.c.d and a.b.c.d are the same client.
    static func sameHost(_ a: SocketAddress, _ b: SocketAddress?) -> Bool {
        guard let x = a.ipAddress, let y = b?.ipAddress else { return false }
        let strip = { (text: String) in text.hasPrefix("::ffff:") ? String(text.dropFirst(7)) : text }
        return strip(x) == strip(y)
    }

    /// The data connection for the next transfer: the passive listener's first client, or a
    /// connection to the PORT address; fails after data_timeout.
    private func dataConnection() -> EventLoopFuture<any Channel>? {
        guard let loop = eventLoop else { return nil }
        if let passive {
            self.passive = nil
            let timeout = loop.scheduleTask(in: .nanoseconds(Int64(settings.dataTimeout * 1e9))) { passive.close() }
            return passive.accepted.futureResult.always { _ in
                timeout.cancel()
                passive.channel.close(promise: nil)
            }
        }
        if let active {
            self.active = nil
            return FTPData.connect(on: loop, to: active, timeout: settings.dataTimeout, tls: protectData ? tls : nil)
        }
        return nil
    }

    /// Runs a transfer: waits for the data connection, says 150, moves the data, then 226 — or
    /// 425/426/451 — and, after an ABOR, 226 for the ABOR too.
    private func transfer(_ opening: String, _ move: @escaping (any Channel) -> EventLoopFuture<Int>,
                          after: @escaping (_ succeeded: Bool) -> Void = { _ in }) -> [LineAction] {
        guard let connection = dataConnection() else { return fail("425 Use PORT or PASV first.") }
        aborted = false
        let finished = connection.assumeIsolated().map { channel -> [LineAction] in
            self.transferChannel = channel
            let done = move(channel).assumeIsolated().map { _ -> FTPTransferError? in nil }.recover { error in
                (error as? FTPTransferError) ?? FTPTransferError(reply: "426 Connection closed; transfer aborted.")
            }.map { failure -> [LineAction] in
                self.transferChannel = nil
                channel.close(promise: nil)
                after(failure == nil)
                if let failure, !self.aborted {
                    self.logger.warning("transfer failed", metadata: [
                        "peer": "\(self.peer?.ipAddress ?? "?")", "user": "\(self.account?.name ?? "?")", "reply": "\(failure.reply)",
                    ])
                }
                if self.aborted {
                    self.aborted = false
                    return [.reply("426 Connection closed; transfer aborted.\r\n"), .reply("226 Abort successful.\r\n")]
                }
                return [.reply((failure?.reply ?? "226 Transfer complete.") + "\r\n")]
            }
            return [.reply(opening + "\r\n"), .wait(done)]
        }.recover { _ -> [LineAction] in
            after(false)
            if self.aborted {
                self.aborted = false
                return [.reply("225 Data connection closed; no transfer.\r\n"), .reply("226 Abort successful.\r\n")]
            }
            return [.reply("425 Cannot open data connection.\r\n")]
        }
        return [.wait(finished)]
    }

    private func listing(_ verb: String, _ argument: String) -> [LineAction] {
        // Options like -la are accepted and dropped (ls-style clients send them).
        var path = argument
        var flags = ""
        while path.hasPrefix("-") {
            let end = path.firstIndex(of: " ") ?? path.endIndex
            flags += path[..<end]
            path = String(path[end...].drop { $0 == " " })
        }
        do {
            let (_, real) = try files!.existing(path.isEmpty ? "." : path)
            if verb == "MLSD", let entry = FTPEntry.info(real, name: ""), !entry.isDirectory { return fail("501 MLSD needs a directory.") }
            let writable = account!.writable
            // A folder may be large: it is read off the event loop once the data connection is up.
            return transfer("150 Here comes the directory listing.") { channel in
                NIOThreadPool.singleton.runIfActive(eventLoop: channel.eventLoop) {
                    ByteBuffer(string: Self.listingText(verb, real: real, writable: writable, arguments: flags))
                }.flatMap { FTPData.send($0, on: channel) }
            }
        } catch {
            return pathError(error)
        }
    }

    private func retrieve(_ argument: String) -> [LineAction] {
        let offset = restart
        restart = 0
        do {
            let (virtual, real) = try files!.existing(argument)
            guard let entry = FTPEntry.info(real, name: ""), !entry.isDirectory else { return fail("550 Failed to open file.") }
            guard access(real, R_OK) == 0 else { return fail("550 Permission denied.") }
            let ascii = self.ascii
            let chunked = ascii || protectData
            let logger = self.logger
            let user = account!.name
            return transfer("150 Opening \(ascii ? "ASCII" : "BINARY") mode data connection for \(virtual) (\(entry.size) bytes).", { channel in
                chunked ? FTPData.sendChunks(real, offset: offset, ascii: ascii, on: channel) : FTPData.sendFile(real, offset: offset, on: channel)
            }, after: { succeeded in
                if succeeded { logger.info("download", metadata: ["user": "\(user)", "file": "\(virtual)", "bytes": "\(entry.size - offset)"]) }
            })
        } catch {
            return pathError(error)
        }
    }

    private func store(_ verb: String, _ argument: String) -> [LineAction] {
        let offset = restart
        restart = 0
        guard account!.writable else { return fail("550 Permission denied.") }
        guard passive != nil || active != nil else { return fail("425 Use PORT or PASV first.") }
        var name = argument
        if verb == "STOU" {
            name = (argument.isEmpty ? "upload" : argument) + ".\(UInt32.random(in: 0...UInt32.max))"
        }
        let target: (virtual: String, real: String)
        do {
            target = try files!.creatable(name)
        } catch {
            return pathError(error)
        }
        if let entry = FTPEntry.info(target.real, name: ""), entry.isDirectory { return fail("550 A directory has that name.") }
        // A plain STOR goes to a hidden temporary name in the same folder and is renamed into
        // place only when complete; APPE and a restarted STOR write into the file itself.
        let inPlace = verb == "APPE" || offset > 0
        let slash = target.real.lastIndex(of: "/")!
        let temporary = String(target.real[...slash]) + ".inetkit-upload-\(UInt32.random(in: 0...UInt32.max))-" + target.real[target.real.index(after: slash)...]
        let path = inPlace ? target.real : temporary
        let flags = inPlace ? (verb == "APPE" ? O_WRONLY | O_CREAT | O_APPEND : O_WRONLY | O_CREAT) : O_WRONLY | O_CREAT | O_EXCL
        let fd = open(path, flags | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return fail("553 Could not create file.") }
        if inPlace, verb != "APPE", offset > 0 {
            // A restart resumes an upload: it cannot start past what is there (that would
            // make a sparse file of any size), as ProFTPD and Pure-FTPd refuse too.
            var info = stat()
            guard fstat(fd, &info) == 0, offset <= Int(info.st_size) else {
                close(fd)
                return fail("554 Restart offset \(offset) is past the end of the file.")
            }
            lseek(fd, off_t(offset), SEEK_SET)
            ftruncate(fd, off_t(offset))
        }
        let ascii = self.ascii
        let logger = self.logger
        let user = account!.name
        let opening = verb == "STOU" ? "150 FILE: \(target.virtual)" : "150 Ok to send data."
        return transfer(opening, { channel in
            FTPData.receive(into: fd, ascii: ascii, on: channel).flatMap { count in
                // Durable before 226: the data, then the name; fsync waits on the disk, so not here.
                NIOThreadPool.singleton.runIfActive(eventLoop: channel.eventLoop) { () throws -> Int in
                    guard fsync(fd) == 0 else { throw FTPTransferError(reply: "451 Cannot write the file.") }
                    if !inPlace {
                        guard rename(temporary, target.real) == 0 else { throw FTPTransferError(reply: "553 Could not store the file.") }
                    }
                    return count
                }
            }
        }, after: { succeeded in
            close(fd)
            if !succeeded, !inPlace { unlink(temporary) }
            if succeeded { logger.info("upload", metadata: ["user": "\(user)", "file": "\(target.virtual)"]) }
        })
    }

    private func change(_ verb: String, _ argument: String) -> [LineAction] {
        guard account!.writable else { return fail("550 Permission denied.") }
        guard !argument.isEmpty else { return fail("501 \(verb) needs a name.") }
        do {
            switch verb {
            case "DELE":
                let (_, real) = try files!.existing(argument)
                if let entry = FTPEntry.info(real, name: ""), entry.isDirectory { return fail("550 That is a directory; use RMD.") }
                return unlink(real) == 0 ? reply("250 Delete operation successful.") : fail("550 Delete operation failed.")
            case "MKD", "XMKD":
                let (virtual, real) = try files!.creatable(argument)
                return mkdir(real, 0o755) == 0 ? reply("257 \"\(virtual.replacingQuotes)\" created") : fail("550 Create directory operation failed.")
            case "RMD", "XRMD":
                let (virtual, real) = try files!.existing(argument)
                guard virtual != "/" else { return fail("550 Permission denied.") }
                return rmdir(real) == 0 ? reply("250 Remove directory operation successful.") : fail("550 Remove directory operation failed.")
            case "RNFR":
                let found = try files!.existing(argument)
                guard found.virtual != "/" else { return fail("550 Permission denied.") }
                renameFrom = found
                return reply("350 Ready for RNTO.")
            default:  // RNTO
                guard let from = renameFrom else { return fail("503 RNFR required first.") }
                renameFrom = nil
                let (_, real) = try files!.creatable(argument)
                return rename(from.real, real) == 0 ? reply("250 Rename successful.") : fail("550 Rename failed.")
            }
        } catch {
            return pathError(error)
        }
    }
}

extension String {
    /// RFC 959 appendix II: a quote in a 257 path is doubled.
    var replacingQuotes: String {
        var out = ""
        for character in self {
            out.append(character)
            if character == "\"" { out.append("\"") }
        }
        return out
    }

    var replacingDots: String {
        String(map { $0 == "." ? "," : $0 })
    }
}
