#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import InetCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization

/// The SNMP agent on port 161/UDP (SNMPv1, RFC 1157; SNMPv2c, RFC 1901/3416): the system and
/// snmp groups, IF-MIB's interface tables, and INETKIT-MIB's table of this host's services.
public struct SNMPService: InetService {
    public static let descriptor = ServiceDescriptor(
        name: "snmp", wellKnownPort: 161, transports: [.udp],
        optionKeys: ["communities", "contact", "location", "name", "max_message_size", "trap_sinks", "state_file", "bulk_rate", "bulk_burst"],
        summary: "an SNMP v1/v2c agent for the host and its services (RFC 1157, 3416)",
        defaultUDPRate: (rate: 2000, burst: 4000)
    ) { options throws(ConfigError) in
        try SNMPService(options: options)
    }

    let agent: SNMPAgent
    let traps: TrapSender

    init(options: ServiceOptions) throws(ConfigError) {
        var communities: [Community] = []
        if let reader = options.reader, let list = reader.value("communities") {
            guard case .list(let items, _) = list else { throw reader.error("communities", "expected a list of {name, access, from}") }
            for item in items {
                let entry = try ConfigReader(item, file: reader.file, path: reader.keyPath("communities"))
                try entry.rejectUnknownKeys(allowed: ["name", "access", "from"])
                guard let name = try entry.string("name"), !name.isEmpty else { throw entry.error("name", "each community needs a name") }
                let accessText = try entry.string("access") ?? "read"
                guard let access = Community.Access(rawValue: accessText) else { throw entry.error("access", "'\(accessText)' is not read or write") }
                var from: [CIDR] = []
                for text in try entry.stringList("from") ?? ["127.0.0.0/8", "::1/128"] {
                    guard let cidr = CIDR(text) else { throw entry.error("from", "'\(text)' is not an address or CIDR") }
                    from.append(cidr)
                }
                communities.append(Community(name: Array(name.utf8), access: access, from: from))
            }
        } else {
            communities = [Community(name: Array("public".utf8), access: .read, from: [CIDR("127.0.0.0/8")!, CIDR("::1/128")!])]
        }
        let size = try options.reader?.int("max_message_size", range: 484...65_507) ?? 1472
        let defaults = SystemStrings.Values(
            contact: try options.string("contact") ?? "",
            name: try options.string("name") ?? systemHostName(),
            location: try options.string("location") ?? "")
        let stateFile = try options.path("state_file", default: "snmp/system.conf")
        // GETBULK, the amplifying request, keeps a strict per-source limit of its own (GET and
        // GETNEXT answers are about their requests' size: the service's udp_rate covers them).
        let bulkRate = try options.reader?.seconds("bulk_rate", range: 0...1_000_000) ?? 100
        let bulkBurst = try options.reader?.seconds("bulk_burst", range: 1...1_000_000) ?? max(1, bulkRate * 2)
        agent = SNMPAgent(communities: communities, system: SystemStrings(defaults: defaults, file: stateFile),
                          host: options.host, maximumMessageSize: size,
                          bulkLimiter: SharedSourceLimiter(rate: bulkRate, burst: bulkBurst))
        var sinks: [TrapSink] = []
        for text in try options.reader?.stringList("trap_sinks") ?? [] {
            guard let sink = TrapSink(text) else {
                throw options.error("trap_sinks", "'\(text)' is not HOST[:PORT] or COMMUNITY@HOST[:PORT]")
            }
            sinks.append(sink)
        }
        traps = TrapSender(sinks: sinks, agent: agent)
        // Each agent object watches for as long as it lives: a reload replaces it with a new
        // one, whose watcher carries on from what the host's watchers have already seen.
        traps.start()
    }

    public func prepare() throws {
        if let file = agent.system.file, let slash = file.lastIndex(of: "/") {
            try createDirectories(String(file[..<slash]))
        }
        traps.start()
    }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard let answer = agent.respond(to: Array(payload.readableBytesView), from: source) else { return nil }
        return allocator.buffer(bytes: answer)
    }

    public func reply(toDatagram payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard let answer = agent.respond(to: Array(payload.readableBytesView), from: nil) else { return nil }
        return allocator.buffer(bytes: answer)
    }

    public var datagramEventKind: String? { "snmp.request" }

    public var datagramEventHex: Bool { false }

    public var servesDatagramsDirectly: Bool { true }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, channel: any Channel, event: inout EventBody) -> ByteBuffer? {
        reply(toDatagram: payload, from: source, allocator: channel.allocator, event: &event)
    }

    public func reply(toDatagram payload: ByteBuffer, from source: SocketAddress, allocator: ByteBufferAllocator, event: inout EventBody) -> ByteBuffer? {
        var note = SNMPExchangeNote()
        let answer = agent.respond(to: Array(payload.readableBytesView), from: source, note: &note)
        if let version = note.version { event.string("version", version) }
        if let pdu = note.pdu { event.string("pdu", pdu) }
        if !note.oids.isEmpty { event.strings("oids", note.oids) }
        if note.varbindCount > note.oids.count { event.int("varbinds", note.varbindCount) }
        if let accepted = note.communityAccepted { event.bool("community_ok", accepted) }
        if let error = note.error { event.string("error_status", error) }
        if let dropped = note.dropped { event.string("dropped", dropped) }
        return answer.map { allocator.buffer(bytes: $0) }
    }
}

/// Where notifications go: `HOST[:PORT]` or `COMMUNITY@HOST[:PORT]` (community `public`, port 162).
struct TrapSink: Sendable, Equatable {
    var host: String
    var port: Int
    var community: String

    init?(_ text: String) {
        var rest = Substring(text)
        community = "public"
        if let at = rest.lastIndex(of: "@") {
            community = String(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.isEmpty { port = 162 } else {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()), (1...65_535).contains(value) else { return nil }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":"), rest.filter({ $0 == ":" }).count == 1 {
            host = String(rest[..<colon])
            guard let value = Int(rest[rest.index(after: colon)...]), (1...65_535).contains(value) else { return nil }
            port = value
        } else {
            host = String(rest)
            port = 162
        }
        guard !host.isEmpty, !community.isEmpty else { return nil }
    }
}

/// Sends SNMPv2c notifications (SNMPv2-Trap-PDU): coldStart once the agent runs, and
/// inetkitServiceStopped when a service of the host stops (e.g. disabled by a reload).
final class TrapSender: Sendable {
    let sinks: [TrapSink]
    private let agent: SNMPAgent
    private let task = NIOLockedValueBox<RepeatedTask?>(nil)
    private let logger = Logger(label: "inetkit.snmp")

    /// What the watchers of one host have seen, shared by every agent object a reload creates.
    private static let seen = NIOLockedValueBox<[ObjectIdentifier: (coldStartSent: Bool, running: Set<String>)]>([:])

    init(sinks: [TrapSink], agent: SNMPAgent) {
        self.sinks = sinks
        self.agent = agent
    }

    deinit {
        task.withLockedValue { $0?.cancel() }
    }

    func start() {
        guard !sinks.isEmpty else { return }
        task.withLockedValue { task in
            guard task == nil else { return }
            task = MultiThreadedEventLoopGroup.singleton.next().scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(500)) {
                [weak self] _ in self?.check()
            }
        }
    }

    private func check() {
        let services = agent.host.services()
        guard services.contains(where: { $0.name == "snmp" && $0.enabled }) else { return }
        let running = Set(services.filter(\.enabled).map(\.name))
        let key = ObjectIdentifier(agent.host)
        // Under the supervisor this agent may be the new generation's: a service the reload
        // stopped is listed as "stopped" (until another worker starts), so it is reported
        // even when this agent never saw it run.
        let stoppedByReload = Set(services.filter { $0.state == "stopped" }.map(\.name))
        let (coldStart, stopped) = Self.seen.withLockedValue { seen -> (Bool, Set<String>) in
            guard let previous = seen[key] else {
                seen[key] = (true, running)
                return (true, stoppedByReload)
            }
            seen[key] = (true, running)
            return (!previous.coldStartSent, previous.running.subtracting(running))
        }
        guard coldStart || !stopped.isEmpty else { return }
        let rows = ServiceTable.rows(services)
        // Resolving a sink's name and sending block: not on the event loop.
        NIOThreadPool.singleton.submit { _ in
            if coldStart { self.send(MIBOID.coldStart, objects: []) }
            for name in stopped.sorted() {
                let index = rows.firstIndex { $0.name == name }.map { UInt32($0 + 1) } ?? 0
                self.send(MIBOID.inetkitServiceStopped, objects: [VarBind(MIBOID.inetkitServiceEntry.appending(2, index), .string(name))])
            }
        }
    }

    func send(_ notification: OID, objects: [VarBind]) {
        for sink in sinks {
            let pdu = PDU(type: .snmpV2Trap, requestID: Int32.random(in: 1...Int32.max), varbinds: [
                VarBind(MIBOID.sysUpTime.appending(0), .timeTicks(agent.upTime)),
                VarBind(MIBOID.snmpTrapOID, .objectIdentifier(notification)),
            ] + objects)
            let bytes = SNMPMessage(version: .v2c, community: Array(sink.community.utf8), pdu: pdu).encode()
            if Self.sendDatagram(bytes, host: sink.host, port: sink.port) {
                agent.counters.outTraps.add(1, ordering: .relaxed)
                agent.counters.outPackets.add(1, ordering: .relaxed)
                logger.info("notification sent", metadata: ["sink": "\(sink.host):\(sink.port)", "trap": "\(notification)"])
            } else {
                logger.warning("notification not sent", metadata: ["sink": "\(sink.host):\(sink.port)", "trap": "\(notification)"])
            }
        }
    }

    /// One datagram from an ephemeral socket (sinks are few and traps rare).
    static func sendDatagram(_ bytes: [UInt8], host: String, port: Int) -> Bool {
        guard let address = try? SocketAddress.makeAddressResolvingHost(host, port: port) else { return false }
        let family = address.protocol.rawValue
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return address.withSockAddr { pointer, length in
            bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, pointer, socklen_t(length)) == bytes.count }
        }
    }
}
