/// Which services run together in one worker process.
public struct WorkerGroup: Equatable, Sendable {
    public var name: String
    public var services: [String]

    public init(name: String, services: [String]) {
        self.name = name
        self.services = services
    }
}

public enum WorkerGroups {
    /// Each protocol family in a worker of its own: the simple services together, HTTP with
    /// HTTPS, DNS, SMTP with POP3 (and their TLS ports), FTP with FTPS, SNMP, NTP, finger with
    /// ident, TFTP, syslog.
    public static let defaults: [WorkerGroup] = [
        WorkerGroup(name: "simple", services: ["echo", "discard", "daytime", "qotd", "chargen", "time"]),
        WorkerGroup(name: "http", services: ["http", "https"]),
        WorkerGroup(name: "dns", services: ["dns"]),
        WorkerGroup(name: "mail", services: ["smtp", "pop3", "smtps", "pop3s"]),
        WorkerGroup(name: "ftp", services: ["ftp", "ftps"]),
        WorkerGroup(name: "snmp", services: ["snmp"]),
        WorkerGroup(name: "ntp", services: ["ntp"]),
        WorkerGroup(name: "who", services: ["finger", "ident"]),
        WorkerGroup(name: "tftp", services: ["tftp"]),
        WorkerGroup(name: "syslog", services: ["syslog"]),
    ]

    /// The workers for the services that run: the defaults regrouped by `workers:`, each
    /// service of the catalog in exactly one group (one of its own when no group names it),
    /// groups without a running service left out.
    public static func plan(config: [(name: String, services: [String])], running: [String], catalog: [String]) -> [WorkerGroup] {
        let moved = Set(config.flatMap(\.services))
        var groups = config.map { WorkerGroup(name: $0.name, services: $0.services) }
        for group in defaults where !groups.contains(where: { $0.name == group.name }) {
            groups.append(WorkerGroup(name: group.name, services: group.services.filter { !moved.contains($0) }))
        }
        let placed = Set(groups.flatMap(\.services))
        for name in catalog where !placed.contains(name) {
            var groupName = name
            while groups.contains(where: { $0.name == groupName }) { groupName += "-1" }
            groups.append(WorkerGroup(name: groupName, services: [name]))
        }
        return groups.compactMap { group in
            let services = group.services.filter(running.contains)
            return services.isEmpty ? nil : WorkerGroup(name: group.name, services: services)
        }
    }
}
