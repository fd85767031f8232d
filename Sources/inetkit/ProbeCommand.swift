import ArgumentParser
import Foundation
import InetCore
import InetDNS
import InetLine
import InetNTP
import InetTFTP
import InetSyslog
import InetWho
import InetSNMP
import InetSimple
import NIOCore
import NIOPosix
import NIOSSL

struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Try every service on each host at once, and print what answers.",
        discussion: """
            The simple services on TCP and UDP; FTP, SMTP and POP3 by their greeting; HTTP by a HEAD request; \
            DNS by an SOA query for inetkit.test; SNMP by a GET of sysUpTime.0 with the community public; \
            NTP by a client request; finger by an empty query; ident by a query for a connection that does not exist; \
            HTTPS, SMTPS, POP3S and FTPS like their plain siblings, over TLS (the certificate is not checked); TFTP by a read of a file that does not exist; syslog by one debug message over TCP (stored, app inetkit-probe).
            """)

    @Option(name: .long, help: "Seconds to wait for each answer.")
    var timeout = 2.0

    @Option(name: .long, help: "Port offset (default: 0 if this process may bind ports < 1024, else 10000).")
    var portOffset: Int?

    @Option(name: .long, help: "Take ports from a ports file written by 'inetkit serve --ports-file'.")
    var portsFile: String?

    @Argument(help: "Hosts to probe.")
    var hosts: [String]

    func run() async throws {
        var options = ClientOptions()
        options.portOffset = portOffset
        options.portsFile = portsFile
        options.timeout = timeout
        var jobs: [(host: String, kind: SimpleKind, transport: Transport, target: Target)] = []
        for host in hosts {
            for kind in SimpleKind.allCases {
                for transport in Transport.allCases {
                    let port = try options.defaultPort(kind, transport: transport)
                    let target = try Target.parse(host, defaultPort: port)
                    jobs.append((host, kind, transport, Target(host: target.host, port: port)))
                }
            }
        }
        let client = SimpleClient(group: MultiThreadedEventLoopGroup.singleton)
        let results = await withTaskGroup(of: (Int, SimpleResult).self) { group in
            for (index, job) in jobs.enumerated() {
                group.addTask {
                    let request = SimpleRequest(kind: job.kind, transport: job.transport, payload: .message("inetkit probe\r\n"), chargenBytes: 74, timeout: timeout)
                    return (index, await client.exchange(request, target: job.target))
                }
            }
            var collected = [SimpleResult?](repeating: nil, count: jobs.count)
            for await (index, result) in group { collected[index] = result }
            return collected.map { $0! }
        }
        var rows = [["HOST", "SERVICE", "TRANSPORT", "PORT", "STATE", "LATENCY", "DETAIL"]]
        var answered = Set<String>()
        for (job, result) in zip(jobs, results) {
            rows.append([
                job.host, job.kind.rawValue, job.transport.rawValue, "\(job.target.port)",
                result.ok ? "up" : "down", result.ok ? ClientReport.milliseconds(result.roundTrip) : "-",
                result.detail,
            ])
            if result.ok { answered.insert(job.host) }
        }
        for probe in await protocolProbes() {
            rows.append([probe.host, probe.service, probe.transport.rawValue, "\(probe.port)", probe.ok ? "up" : "down",
                         probe.ok ? ClientReport.milliseconds(probe.seconds) : "-", probe.detail])
            if probe.ok { answered.insert(probe.host) }
        }
        print(TextTable.render(rows), terminator: "")
        let hostsDown = hosts.filter { !answered.contains($0) }
        if !hostsDown.isEmpty {
            print("no service answered on: \(hostsDown.joined(separator: ", "))")
            throw ExitCode(1)
        }
    }

    struct ProtocolProbe: Sendable {
        var host: String
        var service: String
        var transport: Transport
        var port: Int
        var ok = false
        var seconds = 0.0
        var detail = ""
    }

    /// The protocol services, each asked the smallest thing that proves it answers.
    func protocolProbes() async -> [ProtocolProbe] {
        let services: [(String, Int, Transport)] = [
            ("ftp", 21, .tcp), ("smtp", 25, .tcp), ("dns", 53, .udp), ("http", 80, .tcp), ("pop3", 110, .tcp), ("snmp", 161, .udp),
            ("ntp", 123, .udp), ("finger", 79, .tcp), ("ident", 113, .tcp),
            ("https", 443, .tcp), ("smtps", 465, .tcp), ("pop3s", 995, .tcp), ("ftps", 990, .tcp), ("tftp", 69, .udp),
            ("syslog", 514, .tcp),
        ]
        var probes: [ProtocolProbe] = []
        for host in hosts {
            for (name, wellKnown, transport) in services {
                var port = PortPlan.defaultPort(wellKnown: wellKnown, explicitOffset: portOffset)
                if let portsFile, let ports = try? PortsFile.read(portsFile) {
                    guard let listed = ports[name]?[transport.rawValue] else { continue }
                    port = listed
                }
                let target = (try? Target.parse(host, defaultPort: port)).map { $0.host } ?? host
                probes.append(ProtocolProbe(host: target, service: name, transport: transport, port: port))
            }
        }
        let timeout = self.timeout
        return await withTaskGroup(of: (Int, ProtocolProbe).self) { group in
            for (index, probe) in probes.enumerated() {
                group.addTask {
                    var result = probe
                    let started = NIODeadline.now()
                    do {
                        result.detail = try await Self.ask(probe, timeout: timeout)
                        result.ok = true
                    } catch {
                        result.detail = "\(error)".contains("refused") ? "refused" : "\(error)"
                    }
                    result.seconds = Double((NIODeadline.now() - started).nanoseconds) / 1e9
                    return (index, result)
                }
            }
            var collected = probes
            for await (index, result) in group { collected[index] = result }
            return collected
        }
    }

    static func ask(_ probe: ProtocolProbe, timeout: Double) async throws -> String {
        switch probe.service {
        case "dns":
            var options = DNSClient.Options()
            options.timeout = timeout
            let reply = try await DNSClient(group: MultiThreadedEventLoopGroup.singleton)
                .query(try DNSName("inetkit.test."), .soa, host: probe.host, port: probe.port, options: options)
            return "rcode \(reply.message.rcode), \(reply.message.answers.count) answer(s)"
        case "snmp":
            let client = SNMPClient(host: probe.host, port: probe.port, timeout: timeout, retries: 0)
            let binds = try await client.session { try await $0.get([MIBOID.sysUpTime.appending(0)]) }
            return binds.first.map { "sysUpTime \($0.value.plain)" } ?? "answered"
        case "ntp":
            let m = try await NTPClient.query(host: probe.host, port: probe.port, timeout: timeout, group: MultiThreadedEventLoopGroup.singleton)
            if let code = m.kissCode { return "Kiss-o'-Death \(code)" }
            return String(format: "stratum %d, %@, offset %+.6f s", Int(m.reply.stratum), m.leapText, m.offset)
        case "tftp":
            // A read of a name no server holds: the ERROR it gets back (from the transfer's
            // own port) proves the service.
            var options = TFTPClient.Options()
            options.timeout = timeout
            options.retries = 0
            let client = TFTPClient(host: probe.host, port: probe.port, options: options)
            return try await Task.detached {
                do {
                    _ = try client.get("inetkit-probe-\(UInt32.random(in: 0...UInt32.max))", into: -1)
                    return "answers: DATA"
                } catch let error as TFTPClientError where error.description.hasPrefix("server error") {
                    return "answers: " + error.description.dropFirst("server ".count).replacingOccurrences(of: ":", with: "")
                }
            }.value
        case "syslog":
            // syslog never answers: send one message over TCP and wait until the server has
            // read it and closed (the message is stored, from app inetkit-probe).
            return try await Task.detached {
                let client = try SyslogClient(host: probe.host, port: probe.port, transport: .tcp(octetCounting: true), timeout: timeout)
                var header = SyslogClient.Header()
                header.app = "inetkit-probe"
                header.severity = 7
                try client.send("probe", header: header)
                try client.finish()
                return "took a message over TCP"
            }.value
        case "finger":
            let answer = try await QueryClient.ask(host: probe.host, port: probe.port, query: "", timeout: timeout, limit: 4096)
            let first = FingerText.printable(answer.prefix { $0 != 0x0d && $0 != 0x0a }, limit: 60)
            guard !answer.isEmpty else { throw QueryClientError("closed without an answer") }
            return first
        case "ident":
            // Any well-formed ident reply proves the service; asking for port 1 gets NO-USER.
            let answer = try await QueryClient.ask(host: probe.host, port: probe.port, query: "\(probe.port) , 1", timeout: timeout, limit: 1024)
            let line = FingerText.printable(answer.prefix { $0 != 0x0d && $0 != 0x0a }, limit: 60)
            guard line.contains(" : ") else { throw QueryClientError("not an ident reply: \(line)") }
            return line
        default:
            // The implicit-TLS ports: a probe asks whether they answer, not whom to trust (the
            // certificate is usually the host's own self-signed one).
            let secure = ["https", "smtps", "pop3s", "ftps"].contains(probe.service)
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            let tls = secure ? try NIOSSLContext(configuration: configuration) : nil
            return try await LineConnection.withConnection(host: probe.host, port: probe.port, timeout: timeout, tls: tls) { connection in
                if probe.service == "http" || probe.service == "https" {
                    try await connection.send("HEAD / HTTP/1.0\r\n")
                }
                let line = try await connection.readLine()
                let expected = ["ftp": "220", "smtp": "220", "pop3": "+OK", "http": "HTTP/", "https": "HTTP/", "ftps": "220", "smtps": "220", "pop3s": "+OK"][probe.service] ?? ""
                guard line.hasPrefix(expected) else { throw LineClientError("wrong greeting: \(line.prefix(60))") }
                return String(line.prefix(60))
            }
        }
    }
}
