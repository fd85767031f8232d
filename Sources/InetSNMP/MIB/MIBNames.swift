/// Names for the objects this agent serves (and their parents), for the client: `sysUpTime.0`,
/// `ifDescr.2`, `inetkitServiceTable`. Numeric OIDs work everywhere too.
public enum MIBNames {
    static let table: [(String, OID)] = {
        var names: [(String, OID)] = [
            ("iso", [1]), ("org", [1, 3]), ("dod", [1, 3, 6]), ("internet", [1, 3, 6, 1]), ("mgmt", [1, 3, 6, 1, 2]),
            ("mib-2", MIBOID.mib2), ("enterprises", [1, 3, 6, 1, 4, 1]),
            ("system", MIBOID.system), ("interfaces", MIBOID.interfaces), ("snmp", MIBOID.snmp), ("ifMIB", MIBOID.ifMIB),
            ("ifXTable", MIBOID.ifXTable), ("ifXEntry", MIBOID.ifXTable.appending(1)),
            ("ifTable", MIBOID.ifTable), ("ifEntry", MIBOID.ifTable.appending(1)), ("ifNumber", MIBOID.interfaces.appending(1)),
            ("sysORTable", MIBOID.sysORTable), ("sysOREntry", MIBOID.sysORTable.appending(1)),
            ("inetkit", MIBOID.inetkit), ("inetkitNotifications", MIBOID.inetkitNotifications),
            ("inetkitObjects", MIBOID.inetkit.appending(1)), ("inetkitServiceTable", MIBOID.inetkitServiceTable),
            ("inetkitServiceEntry", MIBOID.inetkitServiceEntry), ("inetkitAgent", MIBOID.inetkitAgent),
            ("inetkitServiceStopped", MIBOID.inetkitServiceStopped),
            ("snmpTrapOID", [1, 3, 6, 1, 6, 3, 1, 1, 4, 1]), ("coldStart", MIBOID.coldStart),
        ]
        let system = ["sysDescr", "sysObjectID", "sysUpTime", "sysContact", "sysName", "sysLocation", "sysServices", "sysORLastChange"]
        for (index, name) in system.enumerated() { names.append((name, MIBOID.system.appending(UInt32(index + 1)))) }
        for (column, name) in [(1, "sysORIndex"), (2, "sysORID"), (3, "sysORDescr"), (4, "sysORUpTime")] {
            names.append((name, MIBOID.sysORTable.appending(1, UInt32(column))))
        }
        let ifColumns = [
            (1, "ifIndex"), (2, "ifDescr"), (3, "ifType"), (4, "ifMtu"), (5, "ifSpeed"), (6, "ifPhysAddress"), (7, "ifAdminStatus"),
            (8, "ifOperStatus"), (9, "ifLastChange"), (10, "ifInOctets"), (11, "ifInUcastPkts"), (13, "ifInDiscards"), (14, "ifInErrors"),
            (16, "ifOutOctets"), (17, "ifOutUcastPkts"), (19, "ifOutDiscards"), (20, "ifOutErrors"),
        ]
        for (column, name) in ifColumns { names.append((name, MIBOID.ifTable.appending(1, UInt32(column)))) }
        let ifXColumns = [
            (1, "ifName"), (2, "ifInMulticastPkts"), (6, "ifHCInOctets"), (7, "ifHCInUcastPkts"), (8, "ifHCInMulticastPkts"),
            (10, "ifHCOutOctets"), (11, "ifHCOutUcastPkts"), (15, "ifHighSpeed"), (18, "ifAlias"),
        ]
        for (column, name) in ifXColumns { names.append((name, MIBOID.ifXTable.appending(1, UInt32(column)))) }
        let snmp = [
            (1, "snmpInPkts"), (2, "snmpOutPkts"), (3, "snmpInBadVersions"), (4, "snmpInBadCommunityNames"), (5, "snmpInBadCommunityUses"),
            (6, "snmpInASNParseErrs"), (8, "snmpInTooBigs"), (9, "snmpInNoSuchNames"), (10, "snmpInBadValues"), (11, "snmpInReadOnlys"),
            (12, "snmpInGenErrs"), (13, "snmpInTotalReqVars"), (14, "snmpInTotalSetVars"), (15, "snmpInGetRequests"),
            (16, "snmpInGetNexts"), (17, "snmpInSetRequests"), (18, "snmpInGetResponses"), (19, "snmpInTraps"), (20, "snmpOutTooBigs"),
            (21, "snmpOutNoSuchNames"), (22, "snmpOutBadValues"), (24, "snmpOutGenErrs"), (25, "snmpOutGetRequests"),
            (26, "snmpOutGetNexts"), (27, "snmpOutSetRequests"), (28, "snmpOutGetResponses"), (29, "snmpOutTraps"),
            (30, "snmpEnableAuthenTraps"), (31, "snmpSilentDrops"), (32, "snmpProxyDrops"),
        ]
        for (column, name) in snmp { names.append((name, MIBOID.snmp.appending(UInt32(column)))) }
        let services = [
            (1, "inetkitServiceIndex"), (2, "inetkitServiceName"), (3, "inetkitServiceTransport"), (4, "inetkitServicePort"),
            (5, "inetkitServiceStatus"), (6, "inetkitServiceConnections"), (7, "inetkitServiceActive"), (8, "inetkitServiceRequests"),
            (9, "inetkitServiceBytesIn"), (10, "inetkitServiceBytesOut"), (11, "inetkitServiceErrors"), (12, "inetkitServiceRefused"),
            (13, "inetkitServiceDropped"),
        ]
        for (column, name) in services { names.append((name, MIBOID.inetkitServiceEntry.appending(UInt32(column)))) }
        return names
    }()

    private static let byName: [String: OID] = Dictionary(table.map { ($0.0.lowercased(), $0.1) }, uniquingKeysWith: { first, _ in first })

    /// `sysUpTime.0`, `SNMPv2-MIB::sysUpTime.0`, `.1.3.6.1.2.1.1.3.0` or `1.3.6.1.2.1.1.3.0`.
    public static func resolve(_ text: String) -> OID? {
        if let numeric = OID(text) { return numeric }
        var body = Substring(text)
        if let range = body.firstRange(of: "::") { body = body[range.upperBound...] }
        let parts = body.split(separator: ".", maxSplits: 1)
        guard let first = parts.first, let base = byName[first.lowercased()] else { return nil }
        guard parts.count == 2 else { return base }
        guard let suffix = OID(String(parts[1])) else { return nil }
        return base.appending(suffix.components)
    }

    /// The name of the longest known prefix and the rest as numbers: `sysUpTime.0`.
    public static func name(of oid: OID) -> String {
        var best: (String, OID)?
        for entry in table where oid.hasPrefix(entry.1) {
            if best == nil || entry.1.components.count > best!.1.components.count { best = entry }
        }
        guard let (name, prefix) = best else { return oid.description }
        let rest = oid.components.dropFirst(prefix.components.count)
        return rest.isEmpty ? name : name + "." + rest.map(String.init).joined(separator: ".")
    }

    /// Names of enumerated values (INTEGER { up(1), down(2) }) of the columns that have them.
    public static func enumeration(_ value: SNMPValue, column: OID) -> String? {
        guard case .integer(let number) = value else { return nil }
        let names: [Int64: String]
        switch column {
        case MIBOID.inetkitServiceEntry.appending(3): names = [1: "tcp", 2: "udp"]
        case MIBOID.inetkitServiceEntry.appending(5): names = [1: "running", 2: "stopped"]
        case MIBOID.ifTable.appending(1, 7), MIBOID.ifTable.appending(1, 8): names = [1: "up", 2: "down", 3: "testing"]
        case MIBOID.ifTable.appending(1, 3): names = [1: "other", 6: "ethernetCsmacd", 24: "softwareLoopback"]
        default: return nil
        }
        return names[number]
    }

    /// The column names of a table, by column number (for `inetkit snmp table`).
    public static func columns(of table: OID) -> [UInt32: String] {
        var columns: [UInt32: String] = [:]
        let entry = table.appending(1)
        for (name, oid) in self.table where oid.components.count == entry.components.count + 1 && oid.hasPrefix(entry) {
            columns[oid.components.last!] = name
        }
        return columns
    }
}
