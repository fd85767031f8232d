/// Well-known object identifiers.
public enum MIBOID {
    public static let mib2: OID = [1, 3, 6, 1, 2, 1]
    public static let system = mib2.appending(1)
    public static let sysDescr = system.appending(1)
    public static let sysObjectID = system.appending(2)
    public static let sysUpTime = system.appending(3)
    public static let sysContact = system.appending(4)
    public static let sysName = system.appending(5)
    public static let sysLocation = system.appending(6)
    public static let sysServices = system.appending(7)
    public static let sysORLastChange = system.appending(8)
    public static let sysORTable = system.appending(9)
    public static let interfaces = mib2.appending(2)
    public static let ifTable = interfaces.appending(2)
    public static let snmp = mib2.appending(11)
    public static let ifXTable: OID = mib2.appending(31, 1, 1)
    /// The enterprise arc: 32473 is IANA's enterprise number for documentation and examples
    /// (RFC 5612), fitting for a teaching and lab tool.
    public static let inetkit: OID = [1, 3, 6, 1, 4, 1, 32473, 1]
    public static let inetkitNotifications = inetkit.appending(0)
    public static let inetkitServiceTable = inetkit.appending(1, 1)
    public static let inetkitServiceEntry = inetkitServiceTable.appending(1)
    public static let inetkitAgent = inetkit.appending(3)
    public static let inetkitServiceStopped = inetkitNotifications.appending(1)
    public static let snmpTrapOID: OID = [1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0]
    public static let coldStart: OID = [1, 3, 6, 1, 6, 3, 1, 1, 5, 1]
    public static let snmpv2MIB: OID = [1, 3, 6, 1, 6, 3, 1]
    public static let ifMIB: OID = mib2.appending(31)
}

/// The variables of one subtree at one moment, sorted by OID; built when a request first
/// touches the subtree.
struct MIBSubtree: Sendable {
    var root: OID
    /// The object types (scalars and columns) the subtree defines: a GET of a missing instance
    /// under one of them is noSuchInstance, anything else noSuchObject.
    var objects: [OID]
    var build: @Sendable (SNMPAgent) -> [VarBind]
}

/// A request's view of the whole MIB: subtrees in OID order, each built at most once.
struct MIBView {
    /// Sorted by root.
    private let subtrees: [MIBSubtree]
    private let agent: SNMPAgent
    private var built: [[VarBind]?]

    init(subtrees: [MIBSubtree], agent: SNMPAgent) {
        self.subtrees = subtrees
        self.agent = agent
        built = Array(repeating: nil, count: subtrees.count)
    }

    private mutating func variables(_ index: Int) -> [VarBind] {
        if let done = built[index] { return done }
        let made = subtrees[index].build(agent)
        built[index] = made
        return made
    }

    /// The value at exactly `oid`, or the v2c exception saying why there is none.
    mutating func get(_ oid: OID) -> SNMPValue {
        guard let index = subtrees.firstIndex(where: { oid.hasPrefix($0.root) }) else { return .noSuchObject }
        let list = variables(index)
        var low = 0
        var high = list.count
        while low < high {
            let middle = (low + high) / 2
            if list[middle].oid < oid { low = middle + 1 } else { high = middle }
        }
        if low < list.count, list[low].oid == oid { return list[low].value }
        return subtrees[index].objects.contains { oid.hasPrefix($0) && oid != $0 } ? .noSuchInstance : .noSuchObject
    }

    /// The first variable after `oid` that `accept` takes (SNMPv1 skips Counter64), or nil at the
    /// end of the MIB.
    mutating func next(after oid: OID, accept: (SNMPValue) -> Bool = { _ in true }) -> VarBind? {
        for index in subtrees.indices {
            let subtree = subtrees[index]
            // Skip subtrees that end before `oid`.
            if subtree.root < oid, !oid.hasPrefix(subtree.root) { continue }
            let list = variables(index)
            var low = 0
            var high = list.count
            while low < high {
                let middle = (low + high) / 2
                if list[middle].oid <= oid { low = middle + 1 } else { high = middle }
            }
            while low < list.count {
                if accept(list[low].value) { return list[low] }
                low += 1
            }
        }
        return nil
    }
}
