import ArgumentParser
import InetCore
import InetSimple
import NIOPosix

struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Try every simple service on each host, TCP and UDP, at once, and print what answers.")

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
        for (job, result) in zip(jobs, results) {
            rows.append([
                job.host, job.kind.rawValue, job.transport.rawValue, "\(job.target.port)",
                result.ok ? "up" : "down", result.ok ? ClientReport.milliseconds(result.roundTrip) : "-",
                result.detail,
            ])
        }
        print(TextTable.render(rows), terminator: "")
        var hostsDown: [String] = []
        for host in hosts where !zip(jobs, results).contains(where: { $0.0.host == host && $0.1.ok }) { hostsDown.append(host) }
        if !hostsDown.isEmpty {
            print("no service answered on: \(hostsDown.joined(separator: ", "))")
            throw ExitCode(1)
        }
    }
}
