import ArgumentParser
import Foundation
import InetCore
import InetSNMP
import InetSimple
import NIOConcurrencyHelpers

struct SNMPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snmp",
        abstract: "Ask SNMP agents: get, next, walk, bulkwalk, set, and a table view.",
        discussion: """
            HOST is host[:port], [v6]:port, or several separated by commas (asked at once with --concurrency). \
            OIDs are numeric (1.3.6.1.2.1.1.3.0) or names of the objects InetKit serves (sysUpTime.0, ifDescr, \
            inetkitServiceTable).
            """,
        subcommands: [SNMPGetCommand.self, SNMPNextCommand.self, SNMPWalkCommand.self, SNMPBulkWalkCommand.self,
                      SNMPSetCommand.self, SNMPTableCommand.self])
}

struct SNMPOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Community.")
    var community = "public"

    @Option(name: [.customShort("v"), .long], help: "SNMP version: 1 or 2c.")
    var version = "2c"

    @Option(name: .long, help: "Seconds to wait for each answer.")
    var timeout = 1.0

    @Option(name: .long, help: "Retries after a timeout.")
    var retries = 3

    @Option(name: .long, help: "Hosts asked at once.")
    var concurrency = 1

    @Option(name: .long, help: "Port offset for hosts without a port (default: 0 if this process may bind ports < 1024, else 10000).")
    var portOffset: Int?

    @Flag(name: .shortAndLong, help: "Print OIDs as numbers.")
    var numeric = false

    @Option(name: .long, help: "Repeat the request N times per host and print the rate (a load test); --concurrency requests in flight.")
    var count = 1

    func validate() throws {
        guard version == "1" || version == "2c" else { throw ValidationError("-v must be 1 or 2c") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
    }

    func clients(_ hosts: String) throws -> [SNMPClient] {
        try hosts.split(separator: ",").map { text in
            let target = try ServerAddress.parse(String(text), wellKnown: 161, portOffset: portOffset)
            return SNMPClient(host: target.host, port: target.port, community: community,
                              version: version == "1" ? .v1 : .v2c, timeout: timeout, retries: retries)
        }
    }

    func oids(_ texts: [String]) throws -> [OID] {
        try texts.map { text in
            guard let oid = MIBNames.resolve(text) else { throw ValidationError("unknown object '\(text)' (use a numeric OID)") }
            return oid
        }
    }

    func line(_ bind: VarBind) -> String {
        "\(numeric ? bind.oid.description : MIBNames.name(of: bind.oid)) = \(bind.value.display)"
    }

    /// Load mode: `count` requests per host, `concurrency` at once (each on its own socket),
    /// then one line with the rate and the failures.
    func load(_ clients: [SNMPClient], _ body: @escaping @Sendable (SNMPClient.Session) async throws -> Int) async throws {
        let started = DispatchTime.now()
        let totals = NIOLockedValueBox<(requests: Int, variables: Int, failures: Int, first: String?)>((0, 0, 0, nil))
        await withTaskGroup(of: Void.self) { group in
            for client in clients {
                let lanes = min(concurrency, count)
                for lane in 0..<lanes {
                    let share = count / lanes + (lane < count % lanes ? 1 : 0)
                    group.addTask {
                        do {
                            try await client.session { session in
                                for _ in 0..<share {
                                    do {
                                        let variables = try await body(session)
                                        totals.withLockedValue { $0.requests += 1; $0.variables += variables }
                                    } catch {
                                        totals.withLockedValue { $0.failures += 1; $0.first = $0.first ?? "\(error)" }
                                    }
                                }
                            }
                        } catch {
                            totals.withLockedValue { $0.failures += share; $0.first = $0.first ?? "\(error)" }
                        }
                    }
                }
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        let result = totals.withLockedValue { $0 }
        print(String(format: "%d requests in %.2f s: %.1f requests/s, %.1f variables/s, %d failed (concurrency %d per host)",
                     result.requests, seconds, Double(result.requests) / seconds, Double(result.variables) / seconds,
                     result.failures, concurrency))
        if let first = result.first {
            FileHandle.standardError.write(Data("inetkit snmp: \(first)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// Runs `body` for every client (at most `concurrency` at once) and prints each host's lines
    /// (prefixed by the host when there are several). Exit status 1 if any host failed.
    func run(_ clients: [SNMPClient], _ body: @escaping @Sendable (SNMPClient.Session) async throws -> [VarBind]) async throws {
        let all = await concurrentMap(clients, limit: concurrency) { client -> Result<[VarBind], any Error> in
            do {
                return .success(try await client.session(body))
            } catch {
                return .failure(error)
            }
        }
        var failed = false
        for (index, client) in clients.enumerated() {
            let host = client.host.contains(":") ? "[\(client.host)]" : client.host
            let prefix = clients.count > 1 ? "\(host):\(client.port): " : ""
            switch all[index] {
            case .success(let binds):
                for bind in binds { print(prefix + line(bind)) }
            case .failure(let error):
                failed = true
                FileHandle.standardError.write(Data("\(prefix)inetkit snmp: \(error)\n".utf8))
            }
        }
        if failed { throw ExitCode(1) }
    }
}

struct SNMPGetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "GET the OIDs: inetkit snmp get 127.0.0.1 sysUpTime.0 sysName.0")
    @Argument(help: "HOST[:PORT] then OIDs.") var arguments: [String]
    @OptionGroup var options: SNMPOptions

    func run() async throws {
        guard arguments.count >= 2 else { throw ValidationError("give HOST and at least one OID") }
        let oids = try options.oids(Array(arguments.dropFirst()))
        if options.count > 1 {
            // One thread per host, each keeping --concurrency requests in flight.
            let clients = try options.clients(arguments[0])
            let count = options.count
            let inFlight = options.concurrency
            var failed = false
            for client in clients {
                let result: SNMPLoad.Result
                do {
                    result = try await withCheckedThrowingContinuation { continuation in
                        Thread.detachNewThread {
                            continuation.resume(with: Result {
                                try SNMPLoad.gets(host: client.host, port: client.port, community: client.community, version: client.version,
                                                  oids: oids, count: count, inFlight: inFlight, timeout: client.timeout)
                            })
                        }
                    }
                } catch {
                    FileHandle.standardError.write(Data("inetkit snmp: \(error)\n".utf8))
                    throw ExitCode(1)
                }
                print(String(format: "%@:%d: %d requests in %.2f s: %.1f requests/s, %d lost (%d in flight)", client.host, client.port,
                             result.answered + result.lost, result.seconds, Double(result.answered) / result.seconds, result.lost, inFlight))
                if result.lost > 0 { failed = true }
            }
            if failed { throw ExitCode(1) }
            return
        }
        try await options.run(try options.clients(arguments[0])) { try await $0.get(oids) }
    }
}

struct SNMPNextCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "next", abstract: "GETNEXT: the variable after each OID.")
    @Argument(help: "HOST[:PORT] then OIDs.") var arguments: [String]
    @OptionGroup var options: SNMPOptions

    func run() async throws {
        guard arguments.count >= 2 else { throw ValidationError("give HOST and at least one OID") }
        let oids = try options.oids(Array(arguments.dropFirst()))
        try await options.run(try options.clients(arguments[0])) { try await $0.next(oids) }
    }
}

struct SNMPWalkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "walk", abstract: "Walk a subtree with GETNEXT (default: the whole MIB-2 and InetKit's tree).")
    @Argument(help: "HOST[:PORT][,HOST...] then optionally OIDs.") var arguments: [String]
    @OptionGroup var options: SNMPOptions

    func run() async throws {
        guard !arguments.isEmpty else { throw ValidationError("give HOST") }
        let roots = arguments.count > 1 ? try options.oids(Array(arguments.dropFirst())) : [MIBOID.mib2, MIBOID.inetkit]
        try await options.run(try options.clients(arguments[0])) { session in
            var all: [VarBind] = []
            for root in roots { all += try await session.walk(root) }
            return all
        }
    }
}

struct SNMPBulkWalkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bulkwalk", abstract: "Walk a subtree with GETBULK (SNMPv2c).")
    @Argument(help: "HOST[:PORT][,HOST...] then optionally OIDs.") var arguments: [String]
    @Option(name: .long, help: "max-repetitions per request.") var repetitions = 25
    @OptionGroup var options: SNMPOptions

    func run() async throws {
        guard !arguments.isEmpty else { throw ValidationError("give HOST") }
        let roots = arguments.count > 1 ? try options.oids(Array(arguments.dropFirst())) : [MIBOID.mib2, MIBOID.inetkit]
        let repetitions = self.repetitions
        if options.count > 1 {
            try await options.load(try options.clients(arguments[0])) { session in
                var total = 0
                for root in roots { total += try await session.walk(root, bulk: true, maxRepetitions: repetitions).count }
                return total
            }
            return
        }
        try await options.run(try options.clients(arguments[0])) { session in
            var all: [VarBind] = []
            for root in roots { all += try await session.walk(root, bulk: true, maxRepetitions: repetitions) }
            return all
        }
    }
}

struct SNMPSetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "SET variables: inetkit snmp set -c private 127.0.0.1 sysLocation.0 s 'Lab 2'",
        discussion: "Types as net-snmp: i INTEGER, u Gauge32, c Counter32, t TimeTicks, a IpAddress, o OID, s STRING, x hex STRING.")
    @Argument(help: "HOST[:PORT] then OID TYPE VALUE triples.") var arguments: [String]
    @OptionGroup var options: SNMPOptions

    func run() async throws {
        let rest = Array(arguments.dropFirst())
        guard !arguments.isEmpty, !rest.isEmpty, rest.count % 3 == 0 else { throw ValidationError("give HOST then OID TYPE VALUE triples") }
        var binds: [VarBind] = []
        for start in stride(from: 0, to: rest.count, by: 3) {
            let oid = try options.oids([rest[start]])[0]
            guard let value = SNMPValue.parse(type: rest[start + 1], value: rest[start + 2]) else {
                throw ValidationError("'\(rest[start + 2])' is not a value of type \(rest[start + 1])")
            }
            binds.append(VarBind(oid, value))
        }
        let request = binds
        try await options.run(try options.clients(arguments[0])) { try await $0.set(request) }
    }
}

struct SNMPTableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table", abstract: "Show a table as rows and columns (default inetkitServiceTable; also ifTable, ifXTable, sysORTable).")
    @Argument(help: "HOST[:PORT] then optionally the table.") var arguments: [String]
    @OptionGroup var options: SNMPOptions

    func run() async throws {
        guard !arguments.isEmpty else { throw ValidationError("give HOST") }
        let table = arguments.count > 1 ? try options.oids([arguments[1]])[0] : MIBOID.inetkitServiceTable
        let names = MIBNames.columns(of: table)
        let entry = table.appending(1)
        for client in try options.clients(arguments[0]) {
            let binds: [VarBind]
            do {
                binds = try await client.session { try await $0.walk(entry, bulk: client.version == .v2c) }
            } catch {
                FileHandle.standardError.write(Data("inetkit snmp: \(error)\n".utf8))
                throw ExitCode(1)
            }
            var columns: [UInt32] = []
            var rows: [String] = []
            var cells: [String: [UInt32: String]] = [:]
            for bind in binds {
                let parts = bind.oid.components.dropFirst(entry.components.count)
                guard let column = parts.first else { continue }
                let index = parts.dropFirst().map(String.init).joined(separator: ".")
                if !columns.contains(column) { columns.append(column) }
                if cells[index] == nil { rows.append(index) }
                cells[index, default: [:]][column] = MIBNames.enumeration(bind.value, column: entry.appending(column)) ?? bind.value.plain
            }
            let prefix = MIBNames.name(of: entry).replacingOccurrences(of: "Entry", with: "")
            let headers = ["index"] + columns.map { names[$0].map { name in name.hasPrefix(prefix) && name.count > prefix.count ? String(name.dropFirst(prefix.count)) : name } ?? "\($0)" }
            let grid = rows.map { row in [row] + columns.map { cells[row]?[$0] ?? "" } }
            let widths = headers.indices.map { column in ([headers[column]] + grid.map { $0[column] }).map(\.count).max() ?? 0 }
            func format(_ values: [String]) -> String {
                values.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    .trimmingCharacters(in: .whitespaces)
            }
            print(format(headers))
            for row in grid { print(format(row)) }
        }
    }
}
