#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore

/// One network interface as IF-MIB reports it, read from /proc/net/dev and /sys/class/net.
struct NetworkInterface: Equatable {
    var index: Int
    var name: String
    var type: Int
    var mtu: Int
    var speedMbps: Int
    var physicalAddress: [UInt8]
    var up: Bool
    var inOctets: UInt64 = 0
    var inPackets: UInt64 = 0
    var inErrors: UInt64 = 0
    var inDrops: UInt64 = 0
    var inMulticast: UInt64 = 0
    var outOctets: UInt64 = 0
    var outPackets: UInt64 = 0
    var outErrors: UInt64 = 0
    var outDrops: UInt64 = 0

    /// Parses /proc/net/dev; `sysfs` reads one attribute of an interface (nil when missing).
    static func parse(procNetDev text: String, sysfs: @escaping (String, String) -> String?) -> [NetworkInterface] {
        var found: [NetworkInterface] = []
        for line in text.split(separator: "\n").dropFirst(2) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimming(" ")
            let fields = line[line.index(after: colon)...].split(separator: " ").compactMap { UInt64($0) }
            guard fields.count >= 16, !name.isEmpty else { continue }
            let attribute = { (key: String) in sysfs(String(name), key)?.trimming(" \n") }
            let arpType = Int(attribute("type") ?? "") ?? 1
            let index = Int(attribute("ifindex") ?? "") ?? (found.count + 1)
            let mac = (attribute("address") ?? "").split(separator: ":").compactMap { UInt8($0, radix: 16) }
            var interface = NetworkInterface(
                index: index, name: String(name),
                type: arpType == 772 ? 24 : arpType == 1 ? 6 : 1,  // softwareLoopback, ethernetCsmacd, other
                mtu: Int(attribute("mtu") ?? "") ?? 0,
                speedMbps: max(0, Int(attribute("speed") ?? "") ?? 0),
                physicalAddress: mac.allSatisfy { $0 == 0 } ? [] : mac,
                up: (attribute("operstate") ?? "up") != "down" && (Int(attribute("flags")?.dropFirst(2) ?? "1", radix: 16) ?? 1) & 1 == 1)
            interface.inOctets = fields[0]
            interface.inPackets = fields[1]
            interface.inErrors = fields[2]
            interface.inDrops = fields[3]
            interface.inMulticast = fields[7]
            interface.outOctets = fields[8]
            interface.outPackets = fields[9]
            interface.outErrors = fields[10]
            interface.outDrops = fields[11]
            found.append(interface)
        }
        return found.sorted { $0.index < $1.index }
    }

    /// The machine's interfaces now (empty where /proc is missing).
    static func current() -> [NetworkInterface] {
        guard let text = readTextFile("/proc/net/dev") else { return [] }
        return parse(procNetDev: text) { name, key in readTextFile("/sys/class/net/\(name)/\(key)", limit: 4096) }
    }

    /// ifTable (RFC 2863) rows.
    static func ifTable(_ interfaces: [NetworkInterface]) -> [VarBind] {
        let entry = MIBOID.ifTable.appending(1)
        let columns: [(UInt32, (NetworkInterface) -> SNMPValue)] = [
            (1, { .integer(Int64($0.index)) }),
            (2, { .string($0.name) }),
            (3, { .integer(Int64($0.type)) }),
            (4, { .integer(Int64($0.mtu)) }),
            (5, { .gauge32(UInt32(clamping: $0.speedMbps * 1_000_000)) }),
            (6, { .octetString($0.physicalAddress) }),
            (7, { .integer($0.up ? 1 : 2) }),
            (8, { .integer($0.up ? 1 : 2) }),
            (9, { _ in .timeTicks(0) }),
            (10, { .counter32(UInt32(truncatingIfNeeded: $0.inOctets)) }),
            (11, { .counter32(UInt32(truncatingIfNeeded: $0.inPackets - min($0.inPackets, $0.inMulticast))) }),
            (13, { .counter32(UInt32(truncatingIfNeeded: $0.inDrops)) }),
            (14, { .counter32(UInt32(truncatingIfNeeded: $0.inErrors)) }),
            (16, { .counter32(UInt32(truncatingIfNeeded: $0.outOctets)) }),
            (17, { .counter32(UInt32(truncatingIfNeeded: $0.outPackets)) }),
            (19, { .counter32(UInt32(truncatingIfNeeded: $0.outDrops)) }),
            (20, { .counter32(UInt32(truncatingIfNeeded: $0.outErrors)) }),
        ]
        var binds = [VarBind(MIBOID.interfaces.appending(1, 0), .integer(Int64(interfaces.count)))]
        for (column, value) in columns {
            for interface in interfaces {
                binds.append(VarBind(entry.appending(column, UInt32(interface.index)), value(interface)))
            }
        }
        return binds
    }

    static let ifTableObjects: [OID] = [MIBOID.interfaces.appending(1)]
        + [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 16, 17, 19, 20].map { MIBOID.ifTable.appending(1, $0) }

    /// ifXTable (RFC 2863) rows: names, 64-bit counters, speed in Mb/s.
    static func ifXTable(_ interfaces: [NetworkInterface]) -> [VarBind] {
        let entry = MIBOID.ifXTable.appending(1)
        let columns: [(UInt32, (NetworkInterface) -> SNMPValue)] = [
            (1, { .string($0.name) }),
            (2, { .counter32(UInt32(truncatingIfNeeded: $0.inMulticast)) }),
            (6, { .counter64($0.inOctets) }),
            (7, { .counter64($0.inPackets - min($0.inPackets, $0.inMulticast)) }),
            (8, { .counter64($0.inMulticast) }),
            (10, { .counter64($0.outOctets) }),
            (11, { .counter64($0.outPackets) }),
            (15, { .gauge32(UInt32(clamping: $0.speedMbps)) }),
            (18, { _ in .string("") }),
        ]
        var binds: [VarBind] = []
        for (column, value) in columns {
            for interface in interfaces { binds.append(VarBind(entry.appending(column, UInt32(interface.index)), value(interface))) }
        }
        return binds
    }

    static let ifXTableObjects: [OID] = [1, 2, 6, 7, 8, 10, 11, 15, 18].map { MIBOID.ifXTable.appending(1, $0) }
}
