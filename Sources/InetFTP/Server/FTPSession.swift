#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import InetLine
import Logging
import NIOCore

/// What an FTP session asks of the world: files (off the event loop) and data connections.
/// Run by `FTPEffects`.
enum FTPEffect {
    /// Wait before answering a failed login.
    case delay(seconds: Double)
    /// A file-system request for a logged-in user.
    case files(FTPFileRequest)
    /// Open a passive listener on `host` for `client` (closing any earlier one).
    case openPassive(host: String, client: String, protected: Bool)
    /// Close the passive listener (PORT replaced it, or ABOR without a transfer).
    case closePassive
    /// Prepare a transfer (resolve and open its file) and wait for its data connection.
    case startTransfer(FTPTransfer)
    /// Move the data of the transfer whose connection is open.
    case moveData
    /// ABOR: close the transfer's data connection (or the listener it waits on).
    case abortTransfer
}

/// What came of an `FTPEffect`.
enum FTPOutcome {
    case delayed
    case files(FTPFileResult)
    case passiveOpened(port: Int)
    case passiveFailed
    case passiveClosed
    /// The file could not be used for the transfer (550, 553, 554).
    case transferRefused(FTPFileFailure)
    /// No data connection came (or could be made) in time.
    case noDataConnection
    /// The data connection is open: the 150 can be sent.
    case dataReady(FTPTransferReady)
    case transferred(bytes: Int, sha256: String? = nil)
    case transferFailed(FTPTransferError)
    case aborted
}

/// A transfer as the session asks for it.
struct FTPTransfer: Sendable {
    enum Kind: Sendable, Equatable {
        /// LIST, NLST or MLSD of a path, with ls-style flags.
        case listing(verb: String, path: String, flags: String)
        case retrieve(path: String, offset: Int)
        /// STOR (`offset` from REST), APPE, or STOU (a unique name made from `path`).
        case store(verb: String, path: String, offset: Int)
    }

    enum DataConnection: Sendable, Equatable {
        case passive
        case active(SocketAddress)
    }

    var kind: Kind
    var files: FTPFileSystem
    var user: String
    var writable: Bool
    var ascii: Bool
    var data: DataConnection
    /// PROT P: the data connection speaks TLS.
    var protected: Bool
}

/// A transfer whose data connection is open.
struct FTPTransferReady: Sendable, Equatable {
    /// The virtual path of the file (for STOU's 150 and the log).
    var virtual: String
    /// The file's size (RETR), for the 150 reply.
    var size: Int
    /// Where an upload is stored on the host (its event names it, for the dashboard's uploads).
    var real: String = ""
}

/// One FTP control connection (RFC 959 5.4 command-reply sequences): a line in, actions out.
/// Pure: files and data connections are `FTPEffect`s, so unit tests and the fuzzer drive every
/// command without sockets.
final class FTPSession: LineSession {
    /// A logged-in user.
    struct Account {
        var user: FTPUser
        var files: FTPFileSystem
    }

    enum Login {
        case awaitingUser
        case awaitingPassword(name: String)
        /// PASS was wrong: the 530 comes after a delay, and then the connection may end.
        case rejecting(closing: Bool)
        /// PASS was right: the user's home is being resolved.
        case opening(FTPUser)
        case loggedIn(Account)
    }

    /// Where the next transfer's data connection comes from.
    enum DataChannel: Equatable {
        case none
        /// A listener is open on this port.
        case passive(port: Int)
        /// PORT/EPRT: the server connects to the client.
        case active(SocketAddress)
    }

    /// What the session is waiting for, besides nothing.
    enum Step {
        case idle
        case passive(extended: Bool, localIP: String)
        /// A file request for this command.
        case files(verb: String, argument: String)
        case transfer(FTPTransfer)
        /// The data connection is open and the 150 sent.
        case moving(FTPTransfer, FTPTransferReady)
    }

    let settings: FTPSettings
    let tlsAvailable: Bool
    let logger: Logger

    private var peer: SocketAddress?
    private var local: SocketAddress?
    private(set) var login = Login.awaitingUser
    private(set) var dataChannel = DataChannel.none
    private var step = Step.idle
    private var loginFailures = 0
    private var errors: LineErrorBudget
    private var ascii = false
    private var restart = 0
    private var renameFrom: (virtual: String, real: String)?
    private var epsvAll = false
    private var tlsActive = false
    private var protectData = false
    /// ABOR came during the transfer in progress.
    private var aborted = false

    init(settings: FTPSettings, tlsAvailable: Bool, tlsActive: Bool = false, logger: Logger) {
        self.tlsActive = tlsActive
        self.settings = settings
        self.tlsAvailable = tlsAvailable
        self.logger = logger
        errors = LineErrorBudget(limit: settings.maxErrors, closing: "421 Too many errors; closing.")
    }

    var account: Account? {
        if case .loggedIn(let account) = login { return account }
        return nil
    }

    var maximumLineLength: Int { FTPSettings.maximumLineLength }

    var timeout: (seconds: Double, reply: String) {
        (settings.commandTimeout, "421 Timeout: closing control connection.\r\n")
    }

    func start(context: LineSessionContext) -> [LineAction<FTPEffect>] {
        peer = context.peer
        local = context.local
        guard !context.overAddressLimit else { return [.reply("421 Too many connections from your address.\r\n"), .close] }
        return [.reply("220 InetKit FTP server ready.\r\n")]
    }

    func closed() -> [FTPEffect] {
        // The runner closes whatever listener and data connection it still holds.
        []
    }

    func lineTooLong() -> [LineAction<FTPEffect>] {
        fail("500 Command line too long.")
    }

    private func reply(_ text: String) -> [LineAction<FTPEffect>] {
        [.reply(text + "\r\n")]
    }

    private func fail(_ text: String) -> [LineAction<FTPEffect>] {
        errors.fail(text)
    }

    /// The command and argument, with Telnet IP/Synch bytes that clients send before ABOR removed.
    private func parse(_ line: ByteBuffer) -> (String, String)? {
        var bytes = Array(line.readableBytesView)[...]
        while let first = bytes.first, first >= 0xF0 { bytes = bytes.dropFirst() }
        // No control characters (a CR would end a reply line that echoes the argument, as
        // 257 and 550 do; RFC 2640's CR NUL for a CR in a name is refused with the NUL).
        guard !bytes.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }), let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let space = text.firstIndex(of: " ") ?? text.endIndex
        let verb = text[..<space].uppercased()
        let argument = space < text.endIndex ? String(text[text.index(after: space)...]) : ""
        return (verb, argument)
    }

    func receiveWhileBusy(line: ByteBuffer) -> [LineAction<FTPEffect>]? {
        guard let (verb, _) = parse(line) else { return nil }
        switch (verb, step) {
        case ("ABOR", .transfer), ("ABOR", .moving):
            // The transfer's own reply (426) comes first, then 226 for the ABOR (RFC 959 4.1.3).
            aborted = true
            return [.signal(.abortTransfer)]
        case ("STAT", .transfer), ("STAT", .moving):
            return reply("213 Transfer in progress.")
        case ("NOOP", .transfer), ("NOOP", .moving):
            return reply("200 NOOP ok.")
        default:
            return nil
        }
    }

    /// PASS (and ACCT) carry secrets: the transcript shows `PASS ****`.
    func transcript(of line: ByteBuffer) -> String? {
        let verb = String(decoding: line.readableBytesView.prefix { $0 != 0x20 }, as: UTF8.self).uppercased()
        return verb == "PASS" || verb == "ACCT" ? maskedArgument(line) : String(decoding: line.readableBytesView, as: UTF8.self)
    }

    func receive(line: ByteBuffer, ending: LineEnding) -> [LineAction<FTPEffect>] {
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
            guard tlsAvailable else { return fail("502 TLS is not configured.") }
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
        guard let account else {
            return fail(Self.needsLogin.contains(verb) ? "530 Please login with USER and PASS." : "500 Unknown command.")
        }
        switch verb {
        case "PWD", "XPWD": return reply("257 \"\(account.files.current.replacingQuotes)\" is the current directory")
        case "CWD", "XCWD": return files(verb, argument, .changeDirectory(account.files, argument.isEmpty ? "/" : argument))
        case "CDUP", "XCUP": return files("CWD", "..", .changeDirectory(account.files, ".."))
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
            let closing: [LineAction<FTPEffect>] = if case .passive = dataChannel { [.signal(.closePassive)] } else { [] }
            dataChannel = .none
            return closing + reply("225 No transfer to abort.")
        case "SIZE": return files(verb, argument, .inspect(account.files, argument))
        case "MDTM": return files(verb, argument, .inspect(account.files, argument))
        case "MLST": return files(verb, argument, .inspect(account.files, argument.isEmpty ? "." : argument))
        case "STAT":
            if argument.isEmpty {
                let data = switch dataChannel {
                case .passive: "passive"
                case .active: "active"
                case .none: "none"
                }
                return [.reply("211-FTP server status:\r\n Logged in as \(account.user.name)\r\n TYPE: \(ascii ? "ASCII" : "BINARY")\r\n Data connection: \(data)\r\n211 End of status\r\n")]
            }
            return files(verb, argument, .listing(account.files, argument, writable: account.user.writable))
        case "LIST", "NLST", "MLSD": return listing(verb, argument, account: account)
        case "RETR": return retrieve(argument, account: account)
        case "STOR", "APPE", "STOU": return store(verb, argument, account: account)
        case "DELE", "MKD", "XMKD", "RMD", "XRMD", "RNFR", "RNTO": return change(verb, argument, account: account)
        default:
            return fail("500 Unknown command.")
        }
    }

    static let needsLogin: Set<String> = [
        "ABOR", "CWD", "XCWD", "CDUP", "XCUP", "PWD", "XPWD", "LIST", "NLST", "RETR", "STOR", "STOU", "APPE", "DELE", "MKD", "XMKD",
        "RMD", "XRMD", "RNFR", "RNTO", "TYPE", "MODE", "STRU", "PASV", "EPSV", "PORT", "EPRT", "REST", "STAT", "SIZE",
        "MDTM", "MLST", "MLSD",
    ]

    // MARK: - Login

    private func user(_ name: String) -> [LineAction<FTPEffect>] {
        guard account == nil else { return fail("530 Already logged in; this server does not change users.") }
        guard !name.isEmpty else { return fail("501 USER needs a name.") }
        login = .awaitingPassword(name: name)
        if ["anonymous", "ftp"].contains(name.lowercased()) {
            guard settings.anonymousRoot != nil else { return reply("331 Please specify the password.") }
            return reply("331 Anonymous login ok, send your e-mail address as password.")
        }
        return reply("331 Please specify the password.")
    }

    /// The password of the login under way (its event carries it with report.show_credentials).
    private var triedPassword = ""

    private func pass(_ password: String) -> [LineAction<FTPEffect>] {
        guard account == nil else { return reply("230 Already logged in.") }
        guard case .awaitingPassword(let name) = login else { return fail("503 Login with USER first.") }
        triedPassword = String(password.prefix(256))
        if let user = settings.account(name), user.anonymous || user.password.map({ Secret.equal($0, password) }) == true {
            login = .opening(user)
            return [.perform(.files(.home(user)))]
        }
        return rejectLogin(name)
    }

    private func rejectLogin(_ name: String) -> [LineAction<FTPEffect>] {
        loginFailures += 1
        logger.notice("failed login", metadata: ["user": "\(name)", "peer": "\(peer?.ipAddress ?? "?")"])
        login = .rejecting(closing: loginFailures >= settings.maxLoginFailures)
        return [.event(LineEvent("ftp.login", [("user", .string(name)), ("ok", .bool(false)), ("password", .secret(triedPassword))])),
                .perform(.delay(seconds: settings.loginDelay))]
    }

    private func features() -> [LineAction<FTPEffect>] {
        var lines = ["EPRT", "EPSV", "MDTM", "MLST type*;size*;modify*;perm*;", "PASV", "REST STREAM", "SIZE", "TVFS", "UTF8"]
        if tlsAvailable { lines += ["AUTH TLS", "PBSZ", "PROT"] }
        return [.reply("211-Features:\r\n" + lines.map { " \($0)\r\n" }.joined() + "211 End\r\n")]
    }

    // MARK: - Files

    private func files(_ verb: String, _ argument: String, _ request: FTPFileRequest) -> [LineAction<FTPEffect>] {
        step = .files(verb: verb, argument: argument)
        return [.perform(.files(request))]
    }

    private func failure(_ failure: FTPFileFailure) -> [LineAction<FTPEffect>] {
        switch failure {
        case .path(.badCharacters): return fail("501 Invalid characters in the name.")
        case .path(.outside): return fail("550 Permission denied.")
        case .path(.notFound): return fail("550 No such file or directory.")
        case .notADirectory: return fail("550 Not a directory.")
        case .isADirectory(let verb):
            switch verb {
            case "SIZE": return fail("550 Could not get file size.")
            case "DELE": return fail("550 That is a directory; use RMD.")
            case "MLSD": return fail("501 MLSD needs a directory.")
            case "STOR", "APPE", "STOU": return fail("550 A directory has that name.")
            default: return fail("550 Failed to open file.")
            }
        case .needsDirectory: return fail("501 MLSD needs a directory.")
        case .unreadable: return fail("550 Permission denied.")
        case .cannotCreate: return fail("553 Could not create file.")
        case .restartPastEnd(let offset): return fail("554 Restart offset \(offset) is past the end of the file.")
        case .operationFailed(let verb):
            switch verb {
            case "DELE": return fail("550 Delete operation failed.")
            case "MKD", "XMKD": return fail("550 Create directory operation failed.")
            case "RMD", "XRMD": return fail("550 Remove directory operation failed.")
            case "RNTO": return fail("550 Rename failed.")
            case "MDTM": return fail("550 Could not get file modification time.")
            default: return fail("550 No such file or directory.")
            }
        case .root: return fail("550 Permission denied.")
        }
    }

    private func filesCompleted(_ result: FTPFileResult, verb: String) -> [LineAction<FTPEffect>] {
        guard case .loggedIn(var account) = login else { return [] }
        switch result {
        case .failed(let why):
            return failure(why)
        case .home:
            return []
        case .directory(let virtual):
            account.files.current = virtual
            login = .loggedIn(account)
            return reply("250 Directory successfully changed.")
        case .found(let virtual, let real, let entry):
            switch verb {
            case "SIZE": return entry.isDirectory ? fail("550 Could not get file size.") : reply("213 \(entry.size)")
            case "MDTM": return reply("213 \(FTPEntry.factTime(entry.modified))")
            case "MLST": return [.reply("250-Listing \(virtual)\r\n \(entry.facts(writable: account.user.writable, name: virtual))\r\n250 End\r\n")]
            case "RNFR":
                renameFrom = (virtual, real)
                return reply("350 Ready for RNTO.")
            default: return []
            }
        case .listing(let text):
            return [.reply("213-Status follows:\r\n" + text + "213 End of status\r\n")]
        case .changed(let virtual):
            switch verb {
            case "DELE": return reply("250 Delete operation successful.")
            case "MKD", "XMKD": return reply("257 \"\(virtual.replacingQuotes)\" created")
            case "RMD", "XRMD": return reply("250 Remove directory operation successful.")
            default: return reply("250 Rename successful.")
            }
        }
    }

    private func change(_ verb: String, _ argument: String, account: Account) -> [LineAction<FTPEffect>] {
        guard account.user.writable else { return fail("550 Permission denied.") }
        guard !argument.isEmpty else { return fail("501 \(verb) needs a name.") }
        switch verb {
        case "DELE": return files(verb, argument, .delete(account.files, argument))
        case "MKD", "XMKD": return files(verb, argument, .makeDirectory(account.files, argument))
        case "RMD", "XRMD": return files(verb, argument, .removeDirectory(account.files, argument))
        case "RNFR": return files(verb, argument, .renameSource(account.files, argument))
        default:  // RNTO
            guard let from = renameFrom else { return fail("503 RNFR required first.") }
            renameFrom = nil
            return files(verb, argument, .rename(account.files, fromReal: from.real, to: argument))
        }
    }

    // MARK: - Data connections

    private func passiveMode(extended: Bool, _ argument: String) -> [LineAction<FTPEffect>] {
        if extended, argument.uppercased() == "ALL" {
            epsvAll = true
            return reply("200 EPSV ALL ok.")
        }
        guard !(epsvAll && !extended) else { return fail("503 EPSV ALL is in force.") }
        guard let localIP = local?.ipAddress, let client = peer?.ipAddress else { return fail("425 Cannot open a passive port.") }
        if !extended, localIP.contains(":") { return fail("522 Use EPSV with IPv6.") }
        dataChannel = .none
        step = .passive(extended: extended, localIP: localIP)
        return [.perform(.openPassive(host: localIP, client: client, protected: protectData))]
    }

    private func activeMode(_ argument: String, extended: Bool) -> [LineAction<FTPEffect>] {
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
        guard let address = try? SocketAddress(ipAddress: target.host, port: target.port) else { return fail("501 Bad address.") }
        // No FTP bounce (RFC 2577 3): only the client's own address, and no privileged port.
        guard address.ipAddress == peer?.ipAddress || Self.sameHost(address, peer) else {
            return fail("504 Data connections go only to the client's own address.")
        }
        guard target.port >= 1024 else { return fail("504 Ports below 1024 are refused.") }
        let closing: [LineAction<FTPEffect>] = if case .passive = dataChannel { [.signal(.closePassive)] } else { [] }
        dataChannel = .active(address)
        return closing + reply("200 \(extended ? "EPRT" : "PORT") command successful. Consider using PASV.")
    }

    /// ::ffff:a.b.c.d and a.b.c.d are the same client.
    static func sameHost(_ a: SocketAddress, _ b: SocketAddress?) -> Bool {
        guard let x = a.ipAddress, let y = b?.ipAddress else { return false }
        let strip = { (text: String) in text.hasPrefix("::ffff:") ? String(text.dropFirst(7)) : text }
        return strip(x) == strip(y)
    }

    /// Starts a transfer on the data channel set up by PASV/EPSV or PORT/EPRT (which it uses up).
    private func transfer(_ kind: FTPTransfer.Kind, account: Account) -> [LineAction<FTPEffect>] {
        let data: FTPTransfer.DataConnection
        switch dataChannel {
        case .none: return fail("425 Use PORT or PASV first.")
        case .passive: data = .passive
        case .active(let address): data = .active(address)
        }
        dataChannel = .none
        aborted = false
        let transfer = FTPTransfer(kind: kind, files: account.files, user: account.user.name, writable: account.user.writable,
                                   ascii: ascii, data: data, protected: protectData)
        step = .transfer(transfer)
        return [.perform(.startTransfer(transfer))]
    }

    private func listing(_ verb: String, _ argument: String, account: Account) -> [LineAction<FTPEffect>] {
        // Options like -la are accepted and dropped (ls-style clients send them).
        var path = Substring(argument)
        var flags = ""
        while path.hasPrefix("-") {
            let end = path.firstIndex(of: " ") ?? path.endIndex
            flags += path[..<end]
            path = path[end...].drop { $0 == " " }
        }
        return transfer(.listing(verb: verb, path: path.isEmpty ? "." : String(path), flags: flags), account: account)
    }

    private func retrieve(_ argument: String, account: Account) -> [LineAction<FTPEffect>] {
        let offset = restart
        restart = 0
        return transfer(.retrieve(path: argument, offset: offset), account: account)
    }

    private func store(_ verb: String, _ argument: String, account: Account) -> [LineAction<FTPEffect>] {
        let offset = restart
        restart = 0
        guard account.user.writable else { return fail("550 Permission denied.") }
        return transfer(.store(verb: verb, path: argument, offset: offset), account: account)
    }

    // MARK: - Outcomes

    func complete(_ outcome: FTPOutcome) -> [LineAction<FTPEffect>] {
        switch outcome {
        case .delayed:
            guard case .rejecting(let closing) = login else { return [] }
            login = .awaitingUser
            return closing ? [.reply("530 Login incorrect.\r\n"), .reply("421 Too many failed logins; closing.\r\n"), .close]
                : [.reply("530 Login incorrect.\r\n")]
        case .files(.home(let files)):
            guard case .opening(let user) = login else { return [] }
            guard let files else { return rejectLogin(user.name) }
            login = .loggedIn(Account(user: user, files: files))
            logger.info("login", metadata: ["user": "\(user.name)", "peer": "\(peer?.ipAddress ?? "?")"])
            return [.event(LineEvent("ftp.login", [("user", .string(user.name)), ("ok", .bool(true)), ("anonymous", .bool(user.anonymous)),
                                                   ("password", .secret(triedPassword))]))]
                + reply("230 Login successful.")
        case .files(let result):
            guard case .files(let verb, _) = step else { return [] }
            step = .idle
            return filesCompleted(result, verb: verb)
        case .passiveOpened(let port):
            guard case .passive(let extended, let localIP) = step else { return [] }
            step = .idle
            dataChannel = .passive(port: port)
            if extended { return reply("229 Entering Extended Passive Mode (|||\(port)|)") }
            let announced = (settings.passiveAddress ?? localIP).replacingDots
            return reply("227 Entering Passive Mode (\(announced),\(port >> 8),\(port & 0xFF)).")
        case .passiveFailed:
            step = .idle
            return reply("425 Cannot open a passive port.")
        case .passiveClosed, .aborted:
            return []
        case .transferRefused(let why):
            step = .idle
            return failure(why)
        case .noDataConnection:
            step = .idle
            if aborted {
                aborted = false
                return [.reply("225 Data connection closed; no transfer.\r\n"), .reply("226 Abort successful.\r\n")]
            }
            return reply("425 Cannot open data connection.")
        case .dataReady(let ready):
            guard case .transfer(let transfer) = step else { return [] }
            step = .moving(transfer, ready)
            return [.reply(opening(transfer, ready) + "\r\n"), .perform(.moveData)]
        case .transferred(let bytes, let sha256):
            guard case .moving(let transfer, let ready) = step else { return [] }
            step = .idle
            if aborted {
                aborted = false
                return [.reply("426 Connection closed; transfer aborted.\r\n"), .reply("226 Abort successful.\r\n")]
            }
            var fields: [(String, LineEvent.Value)] = [("user", .string(transfer.user)), ("bytes", .int(bytes))]
            switch transfer.kind {
            case .retrieve(_, let offset):
                logger.info("download", metadata: ["user": "\(transfer.user)", "file": "\(ready.virtual)", "bytes": "\(bytes)"])
                fields += [("direction", .string("download")), ("verb", .string("RETR")), ("file", .string(ready.virtual))]
                if offset > 0 { fields.append(("offset", .int(offset))) }
            case .store(let verb, _, let offset):
                logger.info("upload", metadata: ["user": "\(transfer.user)", "file": "\(ready.virtual)", "bytes": "\(bytes)"])
                fields += [("direction", .string("upload")), ("verb", .string(verb)), ("file", .string(ready.virtual))]
                if offset > 0 { fields.append(("offset", .int(offset))) }
                if !ready.real.isEmpty { fields.append(("path", .string(ready.real))) }
            case .listing(let verb, let path, _):
                fields += [("direction", .string("listing")), ("verb", .string(verb)), ("file", .string(path))]
            }
            if let sha256 { fields.append(("sha256", .string(sha256))) }
            return [.event(LineEvent("ftp.transfer", fields))] + reply("226 Transfer complete.")
        case .transferFailed(let error):
            step = .idle
            if aborted {
                aborted = false
                return [.reply("426 Connection closed; transfer aborted.\r\n"), .reply("226 Abort successful.\r\n")]
            }
            logger.warning("transfer failed", metadata: [
                "peer": "\(peer?.ipAddress ?? "?")", "user": "\(account?.user.name ?? "?")", "reply": "\(error.reply)",
            ])
            return reply(error.reply)
        }
    }

    private func opening(_ transfer: FTPTransfer, _ ready: FTPTransferReady) -> String {
        switch transfer.kind {
        case .listing: "150 Here comes the directory listing."
        case .retrieve: "150 Opening \(transfer.ascii ? "ASCII" : "BINARY") mode data connection for \(ready.virtual) (\(ready.size) bytes)."
        case .store(let verb, _, _): verb == "STOU" ? "150 FILE: \(ready.virtual)" : "150 Ok to send data."
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
