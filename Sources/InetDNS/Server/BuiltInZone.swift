import InetCore
import NIOConcurrencyHelpers

/// `inetkit.test.`: what a zone of this host says when no zone is configured. SOA and NS,
/// A/AAAA for the host's listening addresses, MX for its mail service, and an SRV record for
/// every running service on each transport with its real port. Rebuilt when services start
/// or stop (checked with one atomic load per query).
final class BuiltInZone: Sendable {
    static let origin = try! DNSName("inetkit.test.")
    private let host: HostDirectory
    private let cached = NIOLockedValueBox<(generation: Int, authority: Authority)?>(nil)

    init(host: HostDirectory) {
        self.host = host
    }

    var generation: Int { host.generation }

    var authority: Authority {
        let generation = host.generation
        if let cached = cached.withLockedValue({ $0 }), cached.generation == generation { return cached.authority }
        let authority = Authority(zones: [Self.zone(for: host.services())])
        cached.withLockedValue { $0 = (generation, authority) }
        return authority
    }

    static func zone(for services: [ServiceStatus]) -> Zone {
        let origin = Self.origin
        func name(_ label: String) -> DNSName { (try? origin.prepending(Array(label.utf8))) ?? origin }
        let ttl: UInt32 = 60
        var records = [
            DNSRecord(name: origin, ttl: ttl, data: .soa(mname: name("ns"), rname: name("hostmaster"), serial: UInt32(truncatingIfNeeded: Int(host_started_serial())), refresh: 3600, retry: 600, expire: 86_400, minimum: 60)),
            DNSRecord(name: origin, ttl: ttl, data: .ns(name("ns"))),
            DNSRecord(name: origin, ttl: ttl, data: .mx(preference: 10, exchange: name("mail"))),
        ]
        var addresses: [[UInt8]] = []
        for service in services {
            for listener in service.listeners {
                let host = listener.address.hasPrefix("[") ? String(listener.address.dropFirst().prefix { $0 != "]" }) : String(listener.address.prefix { $0 != ":" })
                if let bytes = ZoneFileParser.address(host, family: AF_INET, count: 4) ?? ZoneFileParser.address(host, family: AF_INET6, count: 16),
                   !addresses.contains(bytes) {
                    addresses.append(host.contains(":") ? bytes : Array(bytes.prefix(4)))
                }
            }
        }
        if addresses.isEmpty { addresses = [[127, 0, 0, 1]] }
        for label in ["", "ns", "mail", "www"] {
            let owner = label.isEmpty ? origin : name(label)
            for address in addresses {
                records.append(DNSRecord(name: owner, ttl: ttl, data: address.count == 4 ? .a(address) : .aaaa(address)))
            }
        }
        for service in services where service.enabled {
            var seen = Set<String>()
            for listener in service.listeners where seen.insert("\(listener.transport)/\(listener.port)").inserted {
                guard let owner = try? DNSName(labels: [Array("_\(service.name)".utf8), Array("_\(listener.transport)".utf8)] + origin.labels),
                      let port = UInt16(exactly: listener.port) else { continue }
                records.append(DNSRecord(name: owner, ttl: ttl, data: .srv(priority: 0, weight: 0, port: port, target: origin)))
            }
        }
        // The records are built to be valid; should one not be, serve the first three, which
        // are constants (SOA, NS, MX of the literal origin): that `try!` cannot fail on input.
        return (try? Zone(origin: origin, records: records)) ?? (try! Zone(origin: origin, records: Array(records.prefix(3))))
    }
}

/// A serial that grows with the start time (seconds since 1970), as RFC 1982 wants.
private func host_started_serial() -> Int {
    Int(time(nil))
}

#if canImport(Glibc)
import Glibc
#endif
