/// One authoritative zone: its records by owner name (lowercased) and type, plus every name
/// that exists only because something below it does (empty non-terminals, RFC 4592 2.2.2).
public struct Zone: Sendable {
    public let origin: DNSName
    public let soa: DNSRecord
    private(set) var nodes: [DNSName: [DNSType: [DNSRecord]]] = [:]
    /// Every name at or below the origin that exists: owners and their ancestors.
    private(set) var existing: Set<DNSName> = []
    /// Names below the origin with NS records: zone cuts.
    private(set) var delegations: Set<DNSName> = []
    /// All records in file order (for AXFR).
    public let records: [DNSRecord]

    public enum BuildError: Error, Equatable, CustomStringConvertible {
        case noSOA
        case manySOA
        case outOfZone(DNSName)
        case cnameAndOtherData(DNSName)

        public var description: String {
            switch self {
            case .noSOA: "the zone has no SOA record at its origin"
            case .manySOA: "the zone has more than one SOA record"
            case .outOfZone(let name): "\(name) is not inside the zone"
            case .cnameAndOtherData(let name): "\(name) has a CNAME and other data (RFC 1034 3.6.2)"
            }
        }
    }

    public init(origin: DNSName, records: [DNSRecord]) throws(BuildError) {
        self.origin = origin
        self.records = records
        let soas = records.filter { $0.type == .soa && $0.name == origin }
        guard let soa = soas.first else { throw .noSOA }
        guard soas.count == 1, !records.contains(where: { $0.type == .soa && $0.name != origin }) else { throw .manySOA }
        self.soa = soa
        for record in records {
            guard record.name.isSubdomain(of: origin) else { throw .outOfZone(record.name) }
            let key = record.name.lowercased
            if !nodes[key, default: [:]][record.type, default: []].contains(where: { $0.data == record.data }) {
                nodes[key, default: [:]][record.type, default: []].append(record)
            }
            var name: DNSName? = key
            while let current = name, current.labels.count >= origin.labels.count {
                existing.insert(current)
                name = current.parent
            }
            if record.type == .ns && key != origin.lowercased { delegations.insert(key) }
        }
        for (name, types) in nodes where types[.cname] != nil && types.count > 1 {
            throw .cnameAndOtherData(name)
        }
    }

    func rrset(_ name: DNSName, _ type: DNSType) -> [DNSRecord] {
        nodes[name.lowercased]?[type] ?? []
    }

    func node(_ name: DNSName) -> [DNSType: [DNSRecord]]? {
        nodes[name.lowercased]
    }

    func exists(_ name: DNSName) -> Bool {
        existing.contains(name.lowercased)
    }

    /// The highest zone cut strictly between the origin and `name` (or `name` itself).
    func delegation(above name: DNSName) -> DNSName? {
        let lowered = name.lowercased
        let depth = origin.labels.count
        guard lowered.labels.count > depth else { return nil }
        for count in (depth + 1)...lowered.labels.count {
            let candidate = DNSName(validatedLabels: Array(lowered.labels.suffix(count)))
            if delegations.contains(candidate) { return candidate }
        }
        return nil
    }

    /// The SOA for a negative answer: its TTL is the lesser of its own and MINIMUM (RFC 2308 3).
    var negativeSOA: DNSRecord {
        var record = soa
        if case .soa(_, _, _, _, _, _, let minimum) = soa.data { record.ttl = min(soa.ttl, minimum) }
        return record
    }
}
