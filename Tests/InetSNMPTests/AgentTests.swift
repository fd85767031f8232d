import InetCore
import NIOCore
import XCTest
@testable import InetSNMP

/// PDU semantics per version, on the agent directly (no socket).
final class AgentTests: XCTestCase {
    var agent: SNMPAgent!
    var stateFile: String!

    override func setUp() {
        stateFile = "/tmp/inetkit-snmp-test-\(UInt32.random(in: 0...UInt32.max)).conf"
        let communities = [
            Community(name: Array("public".utf8), access: .read, from: [CIDR("127.0.0.0/8")!]),
            Community(name: Array("private".utf8), access: .write, from: []),
        ]
        agent = SNMPAgent(communities: communities,
                          system: SystemStrings(defaults: .init(contact: "root", name: "lab", location: "here"), file: stateFile),
                          host: HostDirectory(), maximumMessageSize: 1472)
    }

    override func tearDown() {
        unlink(stateFile)
    }

    func ask(_ type: PDUType, _ oids: [OID], version: SNMPMessage.Version = .v2c, community: String = "public",
             values: [SNMPValue]? = nil, nonRepeaters: Int64 = 0, maxRepetitions: Int64 = 0,
             from source: String = "127.0.0.1") throws -> PDU? {
        let binds = oids.enumerated().map { VarBind($0.element, values?[$0.offset] ?? .null) }
        let request = SNMPMessage(version: version, community: Array(community.utf8),
                                  pdu: PDU(type: type, requestID: 42, errorStatus: nonRepeaters, errorIndex: maxRepetitions, varbinds: binds))
        guard let bytes = agent.respond(to: request.encode(), from: try SocketAddress(ipAddress: source, port: 5000)) else { return nil }
        let response = try SNMPMessage.decode(bytes)
        XCTAssertEqual(response.pdu.requestID, 42)
        XCTAssertEqual(response.pdu.type, .response)
        XCTAssertEqual(response.version, version)
        return response.pdu
    }

    let sysName: OID = [1, 3, 6, 1, 2, 1, 1, 5, 0]
    let sysLocation: OID = [1, 3, 6, 1, 2, 1, 1, 6, 0]
    let sysDescr: OID = [1, 3, 6, 1, 2, 1, 1, 1, 0]

    func testGetInBothVersions() throws {
        let v2 = try XCTUnwrap(try ask(.getRequest, [sysName, [1, 3, 6, 1, 2, 1, 1, 5, 1], [1, 3, 6, 1, 2, 1, 99]]))
        XCTAssertEqual(v2.errorStatus, 0)
        XCTAssertEqual(v2.varbinds.map(\.value), [.string("lab"), .noSuchInstance, .noSuchObject])
        let v1 = try XCTUnwrap(try ask(.getRequest, [sysName, [1, 3, 6, 1, 2, 1, 99]], version: .v1))
        XCTAssertEqual(v1.errorStatus, ErrorStatus.noSuchName.rawValue)
        XCTAssertEqual(v1.errorIndex, 2)
        XCTAssertEqual(v1.varbinds.map(\.value), [.null, .null], "v1 errors return the request's bindings")
        if case .timeTicks = try XCTUnwrap(try ask(.getRequest, [[1, 3, 6, 1, 2, 1, 1, 3, 0]])).varbinds[0].value {} else { XCTFail("sysUpTime") }
    }

    func testGetBulkHasAStrictLimitPerSourceAndGetsDoNot() throws {
        agent = SNMPAgent(communities: agent.communities, system: agent.system, host: HostDirectory(), maximumMessageSize: 1472,
                          bulkLimiter: SharedSourceLimiter(rate: 1, burst: 2))
        let sysGroup: OID = [1, 3, 6, 1, 2, 1, 1]
        XCTAssertNotNil(try ask(.getBulkRequest, [sysGroup], maxRepetitions: 5))
        XCTAssertNotNil(try ask(.getBulkRequest, [sysGroup], maxRepetitions: 5))
        XCTAssertNil(try ask(.getBulkRequest, [sysGroup], maxRepetitions: 5), "past the burst: dropped")
        XCTAssertNil(try ask(.getBulkRequest, [sysGroup], maxRepetitions: 5))
        XCTAssertNotNil(try ask(.getBulkRequest, [sysGroup], maxRepetitions: 5, from: "127.0.0.2"), "another source has its own bucket")
        for _ in 0..<20 {
            XCTAssertNotNil(try ask(.getRequest, [sysName]), "GETs are not limited by bulk_rate")
            XCTAssertNotNil(try ask(.getNextRequest, [sysGroup]))
        }
        var note = SNMPExchangeNote()
        let request = SNMPMessage(version: .v2c, community: Array("public".utf8),
                                  pdu: PDU(type: .getBulkRequest, requestID: 7, errorStatus: 0, errorIndex: 5, varbinds: [VarBind(sysGroup, .null)]))
        XCTAssertNil(agent.respond(to: request.encode(), from: try SocketAddress(ipAddress: "127.0.0.1", port: 5000), note: &note))
        XCTAssertEqual(note.dropped, "GETBULK rate limit", "the event says why")
    }

    func testGetNextWalksInOrderAndEnds() throws {
        let first = try XCTUnwrap(try ask(.getNextRequest, [[1, 3, 6, 1, 2, 1, 1]]))
        XCTAssertEqual(first.varbinds[0].oid, sysDescr)
        var cursor: OID = [1, 3]
        var seen: [OID] = []
        while true {
            let pdu = try XCTUnwrap(try ask(.getNextRequest, [cursor]))
            if pdu.varbinds[0].value == .endOfMibView { break }
            XCTAssertGreaterThan(pdu.varbinds[0].oid, cursor, "strictly increasing")
            cursor = pdu.varbinds[0].oid
            seen.append(cursor)
            XCTAssertLessThan(seen.count, 10_000)
        }
        XCTAssertTrue(seen.contains(sysName))
        XCTAssertTrue(seen.contains { $0.hasPrefix([1, 3, 6, 1, 2, 1, 11]) }, "the snmp group")
        let end = try XCTUnwrap(try ask(.getNextRequest, [cursor], version: .v1))
        XCTAssertEqual(end.errorStatus, ErrorStatus.noSuchName.rawValue, "v1 end of MIB")
    }

    func testV1SkipsCounter64() throws {
        // ifXTable's ifHCInOctets (column 6) is Counter64: v1 GETNEXT steps over it, v1 GET refuses it.
        let column: OID = MIBOID.ifXTable.appending(1, 6)
        let v2 = try XCTUnwrap(try ask(.getNextRequest, [column]))
        if case .counter64 = v2.varbinds[0].value {} else { XCTFail("v2c sees Counter64: \(v2.varbinds[0])") }
        let v1 = try XCTUnwrap(try ask(.getNextRequest, [column], version: .v1))
        if case .counter64 = v1.varbinds[0].value { XCTFail("v1 must not get Counter64") }
        let get = try XCTUnwrap(try ask(.getRequest, [v2.varbinds[0].oid], version: .v1))
        XCTAssertEqual(get.errorStatus, ErrorStatus.noSuchName.rawValue)
    }

    func testGetBulk() throws {
        let pdu = try XCTUnwrap(try ask(.getBulkRequest, [[1, 3, 6, 1, 2, 1, 1, 3], [1, 3, 6, 1, 2, 1, 1]], nonRepeaters: 1, maxRepetitions: 4))
        XCTAssertEqual(pdu.varbinds.count, 5, "one non-repeater, then four repetitions of one repeater")
        XCTAssertEqual(pdu.varbinds[0].oid, [1, 3, 6, 1, 2, 1, 1, 3, 0])
        XCTAssertEqual(pdu.varbinds[1].oid, sysDescr)
        XCTAssertEqual(pdu.varbinds[4].oid, [1, 3, 6, 1, 2, 1, 1, 4, 0])
        // A huge max-repetitions is bounded by the message size, never an oversized answer.
        let request = SNMPMessage(version: .v2c, community: Array("public".utf8),
                                  pdu: PDU(type: .getBulkRequest, requestID: 1, errorStatus: 0, errorIndex: 100_000, varbinds: [VarBind([1, 3], .null)]))
        let bytes = try XCTUnwrap(agent.respond(to: request.encode(), from: nil))
        XCTAssertLessThanOrEqual(bytes.count, 1472)
        XCTAssertGreaterThan(try SNMPMessage.decode(bytes).pdu.varbinds.count, 10)
        // Past the end: endOfMibView.
        let end = try XCTUnwrap(try ask(.getBulkRequest, [[2]], maxRepetitions: 3))
        XCTAssertEqual(end.varbinds.map(\.value), [.endOfMibView])
    }

    func testSetRules() throws {
        let ok = try XCTUnwrap(try ask(.setRequest, [sysLocation, sysName], community: "private", values: [.string("Lab 2"), .string("box")]))
        XCTAssertEqual(ok.errorStatus, 0)
        XCTAssertEqual(try ask(.getRequest, [sysLocation])?.varbinds[0].value, .string("Lab 2"))
        XCTAssertEqual(SystemStrings(defaults: .init(contact: "", name: "", location: ""), file: stateFile).current.location, "Lab 2",
                       "persisted")
        func status(_ pdu: PDU?) -> ErrorStatus? { pdu.flatMap { ErrorStatus(rawValue: $0.errorStatus) } }
        XCTAssertEqual(status(try ask(.setRequest, [sysLocation], community: "public", values: [.string("x")])), .noAccess)
        XCTAssertEqual(status(try ask(.setRequest, [sysLocation], version: .v1, community: "public", values: [.string("x")])), .readOnly)
        XCTAssertEqual(status(try ask(.setRequest, [sysLocation], community: "private", values: [.integer(1)])), .wrongType)
        XCTAssertEqual(status(try ask(.setRequest, [sysLocation], version: .v1, community: "private", values: [.integer(1)])), .badValue)
        XCTAssertEqual(status(try ask(.setRequest, [sysLocation], community: "private", values: [.octetString(Array(repeating: 65, count: 300))])), .wrongLength)
        XCTAssertEqual(status(try ask(.setRequest, [sysDescr], community: "private", values: [.string("x")])), .notWritable)
        XCTAssertEqual(status(try ask(.setRequest, [[1, 3, 6, 1, 2, 1, 99, 0]], community: "private", values: [.string("x")])), .noCreation)
        XCTAssertEqual(status(try ask(.setRequest, [sysDescr], version: .v1, community: "private", values: [.string("x")])), .noSuchName)
        // All or nothing: the second binding fails, so the first is not applied.
        let mixed = try XCTUnwrap(try ask(.setRequest, [sysLocation, sysDescr], community: "private", values: [.string("changed"), .string("x")]))
        XCTAssertEqual(mixed.errorIndex, 2)
        XCTAssertEqual(try ask(.getRequest, [sysLocation])?.varbinds[0].value, .string("Lab 2"))
    }

    func testCommunitiesAndCounters() throws {
        XCTAssertNil(try ask(.getRequest, [sysName], community: "wrong"))
        XCTAssertNil(try ask(.getRequest, [sysName], from: "192.0.2.7"), "public only from loopback")
        XCTAssertNotNil(try ask(.getRequest, [sysName], community: "private", from: "192.0.2.7"), "private has no address limit")
        XCTAssertNil(agent.respond(to: [0x30, 0x03, 0x02, 0x01], from: nil))
        XCTAssertNil(agent.respond(to: Array("GET / HTTP/1.0\r\n\r\n".utf8), from: nil))
        let counters = try XCTUnwrap(try ask(.getRequest, [MIBOID.snmp.appending(4, 0), MIBOID.snmp.appending(6, 0)]))
        XCTAssertEqual(counters.varbinds.map(\.value), [.counter32(2), .counter32(2)])
    }

    func testTooBig() throws {
        let small = SNMPAgent(communities: agent.communities, system: agent.system, host: HostDirectory(), maximumMessageSize: 484)
        let oids = Array(repeating: sysDescr, count: 12)
        let request = SNMPMessage(version: .v2c, community: Array("public".utf8),
                                  pdu: PDU(type: .getRequest, requestID: 3, varbinds: oids.map { VarBind($0, .null) }))
        let response = try SNMPMessage.decode(try XCTUnwrap(small.respond(to: request.encode(), from: nil)))
        XCTAssertEqual(response.pdu.errorStatus, ErrorStatus.tooBig.rawValue)
        XCTAssertEqual(response.pdu.varbinds, [])
    }

    func testInterfacesFromProcNetDev() {
        let text = """
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo: 1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
              eth0: 5000000000 400   1    2    0     0          0        50  7000       300    3    4    0     0       0          0
            """
        let sysfs: [String: String] = ["lo/ifindex": "1\n", "lo/type": "772\n", "lo/mtu": "65536\n", "eth0/ifindex": "2", "eth0/type": "1",
                                       "eth0/mtu": "1500", "eth0/address": "52:54:00:12:34:56", "eth0/speed": "1000", "eth0/operstate": "up"]
        let interfaces = NetworkInterface.parse(procNetDev: text) { sysfs["\($0)/\($1)"] }
        XCTAssertEqual(interfaces.map(\.name), ["lo", "eth0"])
        XCTAssertEqual(interfaces[0].type, 24)
        XCTAssertEqual(interfaces[1].physicalAddress, [0x52, 0x54, 0, 0x12, 0x34, 0x56])
        let table = NetworkInterface.ifTable(interfaces)
        XCTAssertTrue(table.contains(VarBind(MIBOID.ifTable.appending(1, 10, 2), .counter32(UInt32(truncatingIfNeeded: UInt64(5_000_000_000))))))
        XCTAssertTrue(NetworkInterface.ifXTable(interfaces).contains(VarBind(MIBOID.ifXTable.appending(1, 6, 2), .counter64(5_000_000_000))))
        XCTAssertTrue(table.contains(VarBind(MIBOID.ifTable.appending(1, 5, 2), .gauge32(1_000_000_000))))
    }

    func testNames() {
        XCTAssertEqual(MIBNames.resolve("sysUpTime.0"), [1, 3, 6, 1, 2, 1, 1, 3, 0])
        XCTAssertEqual(MIBNames.resolve("SNMPv2-MIB::sysName.0"), sysName)
        XCTAssertEqual(MIBNames.resolve("inetkitServiceTable"), MIBOID.inetkitServiceTable)
        XCTAssertEqual(MIBNames.resolve(".1.3.6.1"), [1, 3, 6, 1])
        XCTAssertNil(MIBNames.resolve("noSuchThing"))
        XCTAssertEqual(MIBNames.name(of: MIBOID.inetkitServiceEntry.appending(9, 4)), "inetkitServiceBytesIn.4")
        XCTAssertEqual(MIBNames.name(of: [1, 3, 6, 1, 2, 1, 1, 5, 0]), "sysName.0")
    }
}
