import ArgumentParser
import Foundation
import InetCore
import InetSimple
import InetSyslog

#if canImport(Glibc)
import Glibc
#endif

struct SyslogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syslog",
        abstract: "Send messages to a syslog server: inetkit syslog send [--tcp] [--rfc3164] [--severity S] MESSAGE",
        subcommands: [SyslogSendCommand.self])
}

struct SyslogSendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send MESSAGE (or each line of standard input) as one syslog message, like logger(1).",
        discussion: """
            RFC 5424 by default (<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG), RFC 3164 with --rfc3164. \
            Over UDP by default; --tcp sends with octet counting (RFC 6587), --tcp --lf with one line per \
            message, and waits until the server has read everything.
            """)

    @Argument(help: "The message; without one, each line of standard input is sent as a message.")
    var message: [String] = []

    @Option(name: .long, help: "Server as HOST[:PORT] (default 127.0.0.1 on the syslog port under the port rule).")
    var server: String?

    @Option(name: .long, help: "Port offset for a server without a port (default: 0 if this process may bind ports < 1024, else 10000).")
    var portOffset: Int?

    @Flag(name: .long, help: "Send over TCP (octet counting unless --lf).")
    var tcp = false

    @Flag(name: .long, help: "Over TCP, end each message with LF instead of counting its octets.")
    var lf = false

    @Flag(name: .long, help: "The BSD format (RFC 3164) instead of RFC 5424.")
    var rfc3164 = false

    @Option(name: .long, help: "emerg, alert, crit, err, warning, notice, info, debug (or 0-7).")
    var severity = "notice"

    @Option(name: .long, help: "kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0-local7 (or 0-23).")
    var facility = "user"

    @Option(name: .long, help: "APP-NAME (RFC 3164: the tag).")
    var app = "inetkit"

    @Option(name: .long, help: "HOSTNAME field (default: this machine's name).")
    var hostname: String?

    @Option(name: .long, help: "MSGID field (RFC 5424).")
    var msgid: String?

    @Option(name: .long, help: "Seconds to wait for the server (TCP).")
    var timeout = 10.0

    func validate() throws {
        guard SyslogMessage.severity(named: severity) != nil else { throw ValidationError("unknown --severity \(severity)") }
        guard SyslogMessage.facility(named: facility) != nil else { throw ValidationError("unknown --facility \(facility)") }
        guard timeout >= 0.01, timeout <= 3600 else { throw ValidationError("--timeout must be 0.01...3600 s") }
        if lf && !tcp { throw ValidationError("--lf is for --tcp") }
    }

    func run() async throws {
        let target = try ServerAddress.parse(server, wellKnown: 514, portOffset: portOffset)
        var header = SyslogClient.Header()
        header.severity = SyslogMessage.severity(named: severity)!
        header.facility = SyslogMessage.facility(named: facility)!
        header.app = app
        if let hostname { header.hostname = hostname }
        header.msgid = msgid
        header.rfc3164 = rfc3164
        let client: SyslogClient
        do {
            client = try SyslogClient(host: target.host, port: target.port, transport: tcp ? .tcp(octetCounting: !lf) : .udp, timeout: timeout)
        } catch {
            FileHandle.standardError.write(Data("inetkit syslog: \(error)\n".utf8))
            throw ExitCode(1)
        }
        func send(_ text: String) throws { try client.send(text, header: header) }
        do {
            if message.isEmpty {
                while let line = readLine() { try send(line) }
            } else {
                try send(message.joined(separator: " "))
            }
            try client.finish()
        } catch {
            FileHandle.standardError.write(Data("inetkit syslog: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
