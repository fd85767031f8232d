import ArgumentParser
import Foundation
import InetCore
import InetDNS
import InetSimple
import NIOPosix

struct DNSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns",
        abstract: "Ask name servers (dig-like output), or copy a zone with AXFR.",
        subcommands: [DNSQueryCommand.self, DNSTransferCommand.self])
}

/// `@host`, `@host:port`, `@[v6]:port`; without a port, the DNS port of the plan.
struct DNSServerArgument: Sendable {
    var host: String
    var port: Int

    static func parse(_ text: String, defaultPort: Int) throws -> DNSServerArgument {
        do {
            let target = try Target.parse(String(text.dropFirst()), defaultPort: defaultPort)
            return DNSServerArgument(host: target.host, port: target.port)
        } catch {
            throw ValidationError("bad server '\(text)': \(error)")
        }
    }

    var display: String { host.contains(":") ? "[\(host)]#\(port)" : "\(host)#\(port)" }
}

struct DNSQueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Ask NAME [TYPE] of one or more servers: inetkit dns query www.example.test A @127.0.0.1:10053")

    @Argument(help: "NAME, then optionally TYPE and @SERVER[:PORT] arguments.")
    var arguments: [String]

    @Flag(name: .long, help: "Use TCP.")
    var tcp = false

    @Flag(name: .long, help: "Clear the RD bit.")
    var norecurse = false

    @Option(name: .long, help: "EDNS UDP payload size to offer (0: no EDNS).")
    var bufsize: Int = 1232

    @Option(name: .long, help: "Servers asked at once (default: one after another).")
    var concurrency = 1

    @Option(name: .long, help: "Seconds to wait for each answer.")
    var timeout = 3.0

    @Option(name: .long, help: "Port offset for servers without a port (default: 0 if this process may bind ports < 1024, else 10000).")
    var portOffset: Int?

    func run() async throws {
        var names: [String] = []
        var servers: [DNSServerArgument] = []
        let defaultPort = PortPlan.defaultPort(wellKnown: 53, explicitOffset: portOffset)
        for argument in arguments {
            if argument.hasPrefix("@") { servers.append(try DNSServerArgument.parse(argument, defaultPort: defaultPort)) } else { names.append(argument) }
        }
        guard let nameText = names.first, names.count <= 2 else { throw ValidationError("give NAME [TYPE] [@SERVER]...") }
        guard let type = names.count == 2 ? DNSType(name: names[1]) : .a else { throw ValidationError("unknown type '\(names[1])'") }
        guard (0...65_535).contains(bufsize) else { throw ValidationError("--bufsize must be 0...65535") }
        let name = try DNSName(nameText.hasSuffix(".") ? nameText : nameText + ".")
        if servers.isEmpty { servers = [DNSServerArgument(host: "127.0.0.1", port: defaultPort)] }
        var options = DNSClient.Options()
        options.tcp = tcp
        options.recursionDesired = !norecurse
        options.bufferSize = bufsize == 0 ? nil : UInt16(bufsize)
        options.timeout = timeout
        let client = DNSClient(group: MultiThreadedEventLoopGroup.singleton)
        let asked = servers
        let settings = options
        let answers = await concurrentMap(Array(asked.indices), limit: concurrency) { index in
            await Self.ask(client, name, type, asked[index], settings, index).1
        }
        let results: [(DNSServerArgument, Result<DNSClient.Reply, any Error>)] = Array(zip(asked, answers))
        var failed = false
        var distinct: [String: [String]] = [:]
        for (server, result) in results {
            switch result {
            case .success(let reply):
                print(Self.render(reply, server: server))
                let key = DNSRCodeName.name(reply.message.rcode) + "|" + reply.message.answers.map(\.presentation).sorted().joined(separator: "\n")
                distinct[key, default: []].append(server.display)
            case .failure(let error):
                failed = true
                print(";; \(server.display): no answer: \(error)\n")
            }
        }
        if results.count > 1 {
            if distinct.count <= 1 && !failed {
                print(";; all \(results.count) servers gave the same answer")
            } else {
                print(";; ANSWERS DIFFER: \(distinct.count) different answers")
                for (key, who) in distinct.sorted(by: { $0.key < $1.key }) {
                    print(";;   \(key.split(separator: "|").first ?? ""): \(who.joined(separator: ", "))")
                }
            }
        }
        if failed { throw ExitCode(1) }
    }

    static func ask(_ client: DNSClient, _ name: DNSName, _ type: DNSType, _ server: DNSServerArgument, _ options: DNSClient.Options, _ index: Int) async -> (Int, Result<DNSClient.Reply, any Error>) {
        do {
            return (index, .success(try await client.query(name, type, host: server.host, port: server.port, options: options)))
        } catch {
            return (index, .failure(error))
        }
    }

    static func render(_ reply: DNSClient.Reply, server: DNSServerArgument) -> String {
        let m = reply.message
        var flags: [String] = []
        if m.isResponse { flags.append("qr") }
        if m.authoritative { flags.append("aa") }
        if m.truncated { flags.append("tc") }
        if m.recursionDesired { flags.append("rd") }
        if m.recursionAvailable { flags.append("ra") }
        var lines = [
            ";; ->>HEADER<<- opcode: \(m.opcode == 0 ? "QUERY" : String(m.opcode)), status: \(DNSRCodeName.name(m.rcode)), id: \(m.id)",
            ";; flags: \(flags.joined(separator: " ")); QUERY: \(m.questions.count), ANSWER: \(m.answers.count), AUTHORITY: \(m.authority.count), ADDITIONAL: \(m.additional.count + (m.edns == nil ? 0 : 1))",
        ]
        if let edns = m.edns { lines.append(";; EDNS: version: \(edns.version), udp: \(edns.udpPayloadSize)") }
        lines.append("\n;; QUESTION SECTION:")
        lines += m.questions.map { ";\($0.name)\t\tIN\t\($0.type)" }
        for (title, records) in [("ANSWER", m.answers), ("AUTHORITY", m.authority), ("ADDITIONAL", m.additional)] where !records.isEmpty {
            lines.append("\n;; \(title) SECTION:")
            lines += records.map(\.presentation)
        }
        lines.append(String(format: "\n;; Query time: %.1f ms", reply.roundTrip * 1000))
        lines.append(";; SERVER: \(server.display) (\(reply.transport == .udp ? "UDP" : "TCP"))")
        lines.append(";; MSG SIZE rcvd: \(reply.size)\n")
        return lines.joined(separator: "\n")
    }
}

struct DNSTransferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "axfr", abstract: "Copy ZONE from @SERVER[:PORT] and print it in master-file form.")

    @Argument(help: "ZONE @SERVER[:PORT]")
    var arguments: [String]

    @Option(name: .long, help: "Seconds for the whole transfer.")
    var timeout = 30.0

    @Option(name: .long, help: "Port offset for a server without a port.")
    var portOffset: Int?

    func run() async throws {
        let defaultPort = PortPlan.defaultPort(wellKnown: 53, explicitOffset: portOffset)
        guard arguments.count == 2, let serverText = arguments.first(where: { $0.hasPrefix("@") }),
              let zoneText = arguments.first(where: { !$0.hasPrefix("@") }) else { throw ValidationError("give ZONE @SERVER[:PORT]") }
        let server = try DNSServerArgument.parse(serverText, defaultPort: defaultPort)
        let zone = try DNSName(zoneText.hasSuffix(".") ? zoneText : zoneText + ".")
        do {
            let records = try await DNSClient(group: MultiThreadedEventLoopGroup.singleton).transfer(zone, host: server.host, port: server.port, timeout: timeout)
            print("$ORIGIN \(zone)")
            for record in records { print(record.presentation) }
            print(";; \(records.count) records from \(server.display)")
        } catch {
            FileHandle.standardError.write(Data("inetkit: axfr \(zone) from \(server.display): \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
