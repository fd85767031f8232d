#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// What one request was, for the host's `snmp.request` event (the community itself is a
/// password, so only whether it was accepted).
struct SNMPExchangeNote {
    static let maximumOIDs = 16
    var version: String?
    var pdu: String?
    var oids: [String] = []
    var varbindCount = 0
    var communityAccepted: Bool?
    var error: String?
    var dropped: String?
}

/// A community string and what it may do (RFC 1157 3.2.5, RFC 3584's source restriction).
struct Community: Sendable {
    enum Access: String, Sendable {
        case read, write
    }

    var name: [UInt8]
    var access: Access
    var from: [CIDR]
}

/// The snmp group counters (RFC 3418 SNMPv2-MIB, RFC 1213's snmp group).
final class SNMPCounters: Sendable {
    let inPackets = Synchronization.Atomic<Int>(0)
    let outPackets = Synchronization.Atomic<Int>(0)
    let inBadVersions = Synchronization.Atomic<Int>(0)
    let inBadCommunityNames = Synchronization.Atomic<Int>(0)
    let inBadCommunityUses = Synchronization.Atomic<Int>(0)
    let inASNParseErrors = Synchronization.Atomic<Int>(0)
    let inTotalRequestVariables = Synchronization.Atomic<Int>(0)
    let inTotalSetVariables = Synchronization.Atomic<Int>(0)
    let inGetRequests = Synchronization.Atomic<Int>(0)
    let inGetNexts = Synchronization.Atomic<Int>(0)
    let inSetRequests = Synchronization.Atomic<Int>(0)
    let outTooBigs = Synchronization.Atomic<Int>(0)
    let outNoSuchNames = Synchronization.Atomic<Int>(0)
    let outBadValues = Synchronization.Atomic<Int>(0)
    let outGenErrors = Synchronization.Atomic<Int>(0)
    let outGetResponses = Synchronization.Atomic<Int>(0)
    let outTraps = Synchronization.Atomic<Int>(0)
    let silentDrops = Synchronization.Atomic<Int>(0)

    func variables() -> [VarBind] {
        func counter(_ value: borrowing Synchronization.Atomic<Int>) -> SNMPValue { .counter32(UInt32(truncatingIfNeeded: value.load(ordering: .relaxed))) }
        let entries: [(UInt32, SNMPValue)] = [
            (1, counter(inPackets)), (2, counter(outPackets)), (3, counter(inBadVersions)), (4, counter(inBadCommunityNames)),
            (5, counter(inBadCommunityUses)), (6, counter(inASNParseErrors)), (8, .counter32(0)), (9, .counter32(0)),
            (10, .counter32(0)), (11, .counter32(0)), (12, .counter32(0)), (13, counter(inTotalRequestVariables)),
            (14, counter(inTotalSetVariables)), (15, counter(inGetRequests)), (16, counter(inGetNexts)), (17, counter(inSetRequests)),
            (18, .counter32(0)), (19, .counter32(0)), (20, counter(outTooBigs)), (21, counter(outNoSuchNames)),
            (22, counter(outBadValues)), (24, counter(outGenErrors)), (25, .counter32(0)), (26, .counter32(0)),
            (27, .counter32(0)), (28, counter(outGetResponses)), (29, counter(outTraps)), (30, .integer(2)),
            (31, counter(silentDrops)), (32, .counter32(0)),
        ]
        return entries.map { VarBind(MIBOID.snmp.appending($0.0, 0), $0.1) }
    }

    /// Keeps each directory too, so that its identifier is never reused for another host.
    private static let perHost = NIOLockedValueBox<[ObjectIdentifier: (HostDirectory, SNMPCounters)]>([:])

    /// The counters of the host `directory` describes (made on first use).
    static func shared(for directory: HostDirectory) -> SNMPCounters {
        perHost.withLockedValue { table in
            if let existing = table[ObjectIdentifier(directory)] { return existing.1 }
            let made = SNMPCounters()
            table[ObjectIdentifier(directory)] = (directory, made)
            return made
        }
    }

    static let objects: [OID] = [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 24, 25, 26, 27, 28, 29, 30, 31, 32]
        .map { MIBOID.snmp.appending($0) }
}

/// sysContact, sysName and sysLocation: writable, kept in a file so they survive restarts.
final class SystemStrings: Sendable {
    struct Values: Sendable, Equatable {
        var contact: String
        var name: String
        var location: String
    }

    private let values: NIOLockedValueBox<Values>
    let file: String?

    init(defaults: Values, file: String?) {
        var initial = defaults
        if let file, let text = readTextFile(file, limit: 64 * 1024) {
            for line in text.split(separator: "\n") {
                guard let equals = line.firstIndex(of: "=") else { continue }
                let value = String(line[line.index(after: equals)...])
                switch line[..<equals] {
                case "sysContact": initial.contact = value
                case "sysName": initial.name = value
                case "sysLocation": initial.location = value
                default: break
                }
            }
        }
        values = NIOLockedValueBox(initial)
        self.file = file
    }

    var current: Values { values.withLockedValue { $0 } }

    /// Sets the values and writes the file (a temporary file renamed into place).
    func update(_ change: (inout Values) -> Void) -> Bool {
        let next = values.withLockedValue { values -> Values in
            change(&values)
            return values
        }
        guard let file else { return true }
        let text = "sysContact=\(next.contact)\nsysName=\(next.name)\nsysLocation=\(next.location)\n"
        let temporary = file + ".tmp"
        guard let handle = fopen(temporary, "w") else { return false }
        let written = fputs(text, handle) >= 0
        fflush(handle)
        fsync(fileno(handle))
        fclose(handle)
        return written && rename(temporary, file) == 0
    }
}

/// What the agent answers: the MIB and the PDU rules of RFC 1157 (v1) and RFC 3416 (v2c).
final class SNMPAgent: Sendable {
    let communities: [Community]
    /// The snmp group's counters: one set per host, so a reload (which makes a new agent)
    /// does not reset snmpInPkts and the others, as net-snmp keeps them over SIGHUP.
    let counters: SNMPCounters
    let system: SystemStrings
    let host: HostDirectory
    let description: String
    /// Largest response this agent sends (bytes of the whole message).
    let maximumMessageSize: Int
    /// GETBULK answers per source address (`bulk_rate`, `bulk_burst`): a GETBULK response can
    /// be thirty times its request, the amplification a forged source would want.
    let bulkLimiter: SharedSourceLimiter
    let logger = Logger(label: "inetkit.snmp")
    private let interfaceCache = NIOLockedValueBox<(time: Double, interfaces: [NetworkInterface])>((-1, []))

    init(communities: [Community], system: SystemStrings, host: HostDirectory, maximumMessageSize: Int,
         bulkLimiter: SharedSourceLimiter = SharedSourceLimiter(rate: 0, burst: 1)) {
        self.bulkLimiter = bulkLimiter
        self.communities = communities
        self.system = system
        self.host = host
        self.maximumMessageSize = maximumMessageSize
        counters = SNMPCounters.shared(for: host)
        var names = utsname()
        uname(&names)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        description = "InetKit SNMP agent on \(field(names.sysname)) \(field(names.release)) \(field(names.machine))"
        staticSystemGroup = Self.makeSystemGroup(description: description)
    }

    private let staticSystemGroup: [VarBind]

    /// Hundredths of a second since the host started.
    var upTime: UInt32 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let seconds = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 - host.started
        return UInt32(clamping: Int(max(0, seconds) * 100))
    }

    /// Interfaces, re-read at most once a second.
    func interfaces() -> [NetworkInterface] {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let time = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        if let cached = interfaceCache.withLockedValue({ time - $0.time < 1 ? $0.interfaces : nil }) { return cached }
        let fresh = NetworkInterface.current()
        interfaceCache.withLockedValue { $0 = (time, fresh) }
        return fresh
    }

    /// The MIB's subtrees in OID order; each builds its variables when a request touches it.
    static let subtrees: [MIBSubtree] = [
        MIBSubtree(root: MIBOID.system, objects: (1...9).map { MIBOID.system.appending($0) }, build: { $0.systemGroup() }),
        MIBSubtree(root: MIBOID.interfaces, objects: NetworkInterface.ifTableObjects, build: { agent in
            NetworkInterface.ifTable(agent.interfaces())
        }),
        MIBSubtree(root: MIBOID.snmp, objects: SNMPCounters.objects, build: { $0.counters.variables() }),
        MIBSubtree(root: MIBOID.ifXTable, objects: NetworkInterface.ifXTableObjects, build: { NetworkInterface.ifXTable($0.interfaces()) }),
        MIBSubtree(root: MIBOID.inetkit, objects: ServiceTable.objects, build: { ServiceTable.variables($0.host.services()) }),
    ].sorted { $0.root < $1.root }

    func view() -> MIBView {
        MIBView(subtrees: Self.subtrees, agent: self)
    }

    /// The system group: built once, then only sysUpTime and the three writable strings change.
    func systemGroup() -> [VarBind] {
        var binds = staticSystemGroup
        let strings = system.current
        binds[2].value = .timeTicks(upTime)
        binds[3].value = .string(strings.contact)
        binds[4].value = .string(strings.name)
        binds[5].value = .string(strings.location)
        return binds
    }

    private static func makeSystemGroup(description: String) -> [VarBind] {
        var binds = [
            VarBind(MIBOID.sysDescr.appending(0), .string(description)),
            VarBind(MIBOID.sysObjectID.appending(0), .objectIdentifier(MIBOID.inetkitAgent)),
            VarBind(MIBOID.sysUpTime.appending(0), .timeTicks(0)),
            VarBind(MIBOID.sysContact.appending(0), .string("")),
            VarBind(MIBOID.sysName.appending(0), .string("")),
            VarBind(MIBOID.sysLocation.appending(0), .string("")),
            VarBind(MIBOID.sysServices.appending(0), .integer(72)),  // layers 4 and 7 (RFC 3418)
            VarBind(MIBOID.sysORLastChange.appending(0), .timeTicks(0)),
        ]
        let modules: [(OID, String)] = [
            (MIBOID.snmpv2MIB, "SNMPv2-MIB: the system and snmp groups"),
            (MIBOID.ifMIB, "IF-MIB: ifTable and ifXTable"),
            (MIBOID.inetkit, "INETKIT-MIB: one row per service of this host"),
        ]
        let entry = MIBOID.sysORTable.appending(1)
        for (column, value) in [(UInt32(2), { (m: (OID, String)) in SNMPValue.objectIdentifier(m.0) }),
                                (3, { .string($0.1) }), (4, { _ in .timeTicks(0) })] {
            for (index, module) in modules.enumerated() {
                binds.append(VarBind(entry.appending(column, UInt32(index + 1)), value(module)))
            }
        }
        return binds
    }

    // MARK: - Requests

    /// The response to a datagram, or nil when none is sent (the reason counted).
    func respond(to bytes: [UInt8], from source: SocketAddress?) -> [UInt8]? {
        var note = SNMPExchangeNote()
        return respond(to: bytes, from: source, note: &note)
    }

    /// The same, noting what the request was for the host's event.
    func respond(to bytes: [UInt8], from source: SocketAddress?, note: inout SNMPExchangeNote) -> [UInt8]? {
        counters.inPackets.add(1, ordering: .relaxed)
        let message: SNMPMessage
        do {
            message = try SNMPMessage.decode(bytes)
        } catch {
            switch error {
            case .badVersion(let version):
                counters.inBadVersions.add(1, ordering: .relaxed)
                logger.info("dropped", metadata: ["peer": "\(source?.ipAddress ?? "?")", "reason": "SNMP version \(version)"])
                note.dropped = "SNMP version \(version)"
            case .malformed(let reason):
                counters.inASNParseErrors.add(1, ordering: .relaxed)
                logger.info("dropped", metadata: ["peer": "\(source?.ipAddress ?? "?")", "reason": "malformed: \(reason)"])
                note.dropped = "malformed: \(reason)"
            }
            return nil
        }
        note.version = message.version == .v1 ? "1" : "2c"
        note.pdu = message.pdu.type.name
        note.oids = message.pdu.varbinds.prefix(SNMPExchangeNote.maximumOIDs).map(\.oid.description)
        note.varbindCount = message.pdu.varbinds.count
        guard let community = communities.first(where: { $0.name == message.community }),
              community.from.isEmpty || source.map({ address in community.from.contains { $0.contains(address) } }) ?? true else {
            counters.inBadCommunityNames.add(1, ordering: .relaxed)
            logger.info("dropped", metadata: ["peer": "\(source?.ipAddress ?? "?")", "reason": "unknown community or not allowed from this address"])
            note.communityAccepted = false
            note.dropped = "unknown community or not allowed from this address"
            return nil
        }
        note.communityAccepted = true
        if message.pdu.type == .getBulkRequest {
            switch bulkLimiter.admit(source) {
            case .allow: break
            case .startLimiting:
                logger.warning("GETBULK rate limit: dropping", metadata: [
                    "peer": "\(source?.ipAddress ?? "?")", "bulk_rate": "\(bulkLimiter.rate)"])
                note.dropped = "GETBULK rate limit"
                return nil
            case .deny:
                note.dropped = "GETBULK rate limit"
                return nil
            }
        }
        guard let response = respond(to: message, access: community.access) else { return nil }
        if response.pdu.errorStatus != 0 {
            note.error = ErrorStatus(rawValue: response.pdu.errorStatus).map { "\($0)" } ?? "\(response.pdu.errorStatus)"
        }
        var encoded = response.encode()
        if encoded.count > maximumMessageSize {
            counters.outTooBigs.add(1, ordering: .relaxed)
            var tooBig = response
            tooBig.pdu.errorStatus = ErrorStatus.tooBig.rawValue
            tooBig.pdu.errorIndex = 0
            tooBig.pdu.varbinds = message.version == .v1 ? message.pdu.varbinds : []
            encoded = tooBig.encode()
            guard encoded.count <= maximumMessageSize else {
                counters.silentDrops.add(1, ordering: .relaxed)
                return nil
            }
        }
        counters.outGetResponses.add(1, ordering: .relaxed)
        counters.outPackets.add(1, ordering: .relaxed)
        return encoded
    }

    func respond(to message: SNMPMessage, access: Community.Access) -> SNMPMessage? {
        let request = message.pdu
        let v1 = message.version == .v1
        var response = PDU(type: .response, requestID: request.requestID, varbinds: request.varbinds)
        var view = self.view()
        // SNMPv1 cannot carry Counter64 (RFC 3584 4.2.2.1): such variables are skipped or noSuchName.
        let visible: (SNMPValue) -> Bool = { value in
            if case .counter64 = value { return !v1 }
            return true
        }
        func fail(_ status: ErrorStatus, at index: Int) -> SNMPMessage {
            switch status {
            case .noSuchName: counters.outNoSuchNames.add(1, ordering: .relaxed)
            case .badValue: counters.outBadValues.add(1, ordering: .relaxed)
            case .genErr: counters.outGenErrors.add(1, ordering: .relaxed)
            default: break
            }
            var failed = response
            failed.errorStatus = status.rawValue
            failed.errorIndex = Int64(index + 1)
            failed.varbinds = request.varbinds
            return SNMPMessage(version: message.version, community: message.community, pdu: failed)
        }
        switch request.type {
        case .getRequest:
            counters.inGetRequests.add(1, ordering: .relaxed)
            counters.inTotalRequestVariables.add(request.varbinds.count, ordering: .relaxed)
            for (index, bind) in request.varbinds.enumerated() {
                let value = view.get(bind.oid)
                if value.isException || !visible(value) {
                    if v1 { return fail(.noSuchName, at: index) }
                    response.varbinds[index].value = visible(value) ? value : .noSuchInstance
                } else {
                    response.varbinds[index].value = value
                }
            }
        case .getNextRequest:
            counters.inGetNexts.add(1, ordering: .relaxed)
            counters.inTotalRequestVariables.add(request.varbinds.count, ordering: .relaxed)
            for (index, bind) in request.varbinds.enumerated() {
                if let next = view.next(after: bind.oid, accept: visible) {
                    response.varbinds[index] = next
                } else {
                    if v1 { return fail(.noSuchName, at: index) }
                    response.varbinds[index].value = .endOfMibView
                }
            }
        case .getBulkRequest:
            counters.inTotalRequestVariables.add(request.varbinds.count, ordering: .relaxed)
            response.varbinds = bulk(request, view: &view)
        case .setRequest:
            counters.inSetRequests.add(1, ordering: .relaxed)
            counters.inTotalSetVariables.add(request.varbinds.count, ordering: .relaxed)
            guard access == .write else {
                counters.inBadCommunityUses.add(1, ordering: .relaxed)
                return fail(v1 ? .readOnly : .noAccess, at: 0)
            }
            if let (status, index) = set(request.varbinds, view: &view, v1: v1) { return fail(status, at: index) }
        default:
            // Responses, traps and reports are not requests: nothing to answer.
            counters.silentDrops.add(1, ordering: .relaxed)
            return nil
        }
        return SNMPMessage(version: message.version, community: message.community, pdu: response)
    }

    /// GetBulk (RFC 3416 4.2.3): non-repeaters once, then the repeaters up to max-repetitions
    /// times, stopping when the response would pass the message size.
    private func bulk(_ request: PDU, view: inout MIBView) -> [VarBind] {
        let nonRepeaters = min(max(0, Int(clamping: request.errorStatus)), request.varbinds.count)
        let repetitions = max(0, Int(clamping: request.errorIndex))
        var size = 64 + request.varbinds.count  // header, ids, community (an estimate on the safe side)
        let budget = maximumMessageSize - 64
        var out: [VarBind] = []
        func add(_ bind: VarBind) -> Bool {
            let cost = bind.encodedSize
            guard size + cost <= budget else { return false }
            size += cost
            out.append(bind)
            return true
        }
        for bind in request.varbinds.prefix(nonRepeaters) {
            let next = view.next(after: bind.oid) ?? VarBind(bind.oid, .endOfMibView)
            guard add(next) else { return out }
        }
        var cursors = request.varbinds.dropFirst(nonRepeaters).map(\.oid)
        guard !cursors.isEmpty else { return out }
        for _ in 0..<min(repetitions, 10_000 / cursors.count + 1) {
            var allEnded = true
            for index in cursors.indices {
                let next = view.next(after: cursors[index]) ?? VarBind(cursors[index], .endOfMibView)
                if next.value != .endOfMibView { allEnded = false }
                guard add(next) else { return out }
                cursors[index] = next.oid
            }
            if allEnded { break }
        }
        return out
    }

    /// Validates every binding, then applies them all (RFC 3416 4.2.5: all or nothing).
    private func set(_ binds: [VarBind], view: inout MIBView, v1: Bool) -> (ErrorStatus, Int)? {
        let writable: [OID: WritableKeyPath<SystemStrings.Values, String>] = [
            MIBOID.sysContact.appending(0): \.contact, MIBOID.sysName.appending(0): \.name, MIBOID.sysLocation.appending(0): \.location,
        ]
        var changes: [(WritableKeyPath<SystemStrings.Values, String>, String)] = []
        for (index, bind) in binds.enumerated() {
            guard let path = writable[bind.oid] else {
                let exists = !view.get(bind.oid).isException
                return (v1 ? .noSuchName : exists ? .notWritable : .noCreation, index)
            }
            guard case .octetString(let bytes) = bind.value else { return (v1 ? .badValue : .wrongType, index) }
            guard bytes.count <= 255 else { return (v1 ? .badValue : .wrongLength, index) }
            // DisplayString (RFC 2579) without control characters; UTF-8 passes.
            guard bytes.allSatisfy({ $0 >= 0x20 && $0 != 0x7F }) else { return (v1 ? .badValue : .wrongValue, index) }
            changes.append((path, String(decoding: bytes, as: UTF8.self)))
        }
        let stored = system.update { values in
            for (path, value) in changes { values[keyPath: path] = value }
        }
        return stored ? nil : (v1 ? .genErr : .commitFailed, 0)
    }
}
