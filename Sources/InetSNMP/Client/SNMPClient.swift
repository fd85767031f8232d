import InetCore
import NIOCore
import NIOPosix

/// A request that failed: no answer, an error status, or a malformed answer.
public struct SNMPClientError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var status: ErrorStatus?
    public var index: Int

    public init(_ message: String, status: ErrorStatus? = nil, index: Int = 0) {
        self.message = message
        self.status = status
        self.index = index
    }

    public var description: String { message }
}

/// A manager: GET, GETNEXT, GETBULK, SET and walks over SNMPv1 or v2c, with retries.
public struct SNMPClient: Sendable {
    public var host: String
    public var port: Int
    public var community: String
    public var version: SNMPMessage.Version
    public var timeout: Double
    public var retries: Int

    public init(host: String, port: Int, community: String = "public", version: SNMPMessage.Version = .v2c, timeout: Double = 1, retries: Int = 3) {
        self.host = host
        self.port = port
        self.community = community
        self.version = version
        self.timeout = timeout
        self.retries = retries
    }

    /// Runs `body` with one socket for all its requests.
    public func session<T: Sendable>(_ body: (Session) async throws -> T) async throws -> T {
        let udp = try await UDPSession.open(host: host, port: port, group: MultiThreadedEventLoopGroup.singleton)
        let session = Session(client: self, udp: udp)
        do {
            let result = try await body(session)
            await udp.close()
            return result
        } catch {
            await udp.close()
            throw error
        }
    }

    public final class Session: Sendable {
        let client: SNMPClient
        let udp: UDPSession

        init(client: SNMPClient, udp: UDPSession) {
            self.client = client
            self.udp = udp
        }

        /// Sends a PDU and returns the response PDU; throws on timeout or an error status.
        public func request(_ type: PDUType, _ varbinds: [VarBind], nonRepeaters: Int = 0, maxRepetitions: Int = 0) async throws -> [VarBind] {
            let id = Int32.random(in: 1...Int32.max)
            let pdu = PDU(type: type, requestID: id, errorStatus: Int64(nonRepeaters), errorIndex: Int64(maxRepetitions), varbinds: varbinds)
            let message = SNMPMessage(version: client.version, community: Array(client.community.utf8), pdu: pdu)
            let payload = ByteBuffer(bytes: message.encode())
            for _ in 0...client.retries {
                guard let answer = try await udp.request(payload, timeout: .seconds(clamping: client.timeout)) else { continue }
                guard let response = try? SNMPMessage.decode(Array(answer.readableBytesView)), response.pdu.type == .response,
                      response.pdu.requestID == id else { continue }
                if response.pdu.errorStatus != 0 {
                    let status = ErrorStatus(rawValue: response.pdu.errorStatus)
                    let index = Int(response.pdu.errorIndex)
                    let name = status.map { "\($0)" } ?? "error \(response.pdu.errorStatus)"
                    let failed = index >= 1 && index <= varbinds.count ? " (\(MIBNames.name(of: varbinds[index - 1].oid)))" : ""
                    throw SNMPClientError("\(name) at index \(index)\(failed)", status: status, index: index)
                }
                return response.pdu.varbinds
            }
            throw SNMPClientError("no answer from \(client.host):\(client.port) within \(client.timeout) s × \(client.retries + 1) (wrong community or address?)")
        }

        public func get(_ oids: [OID]) async throws -> [VarBind] {
            try await request(.getRequest, oids.map { VarBind($0, .null) })
        }

        public func next(_ oids: [OID]) async throws -> [VarBind] {
            try await request(.getNextRequest, oids.map { VarBind($0, .null) })
        }

        public func set(_ varbinds: [VarBind]) async throws -> [VarBind] {
            try await request(.setRequest, varbinds)
        }

        /// Every variable under `root`, in order: GETNEXT one at a time, or GETBULK (v2c).
        public func walk(_ root: OID, bulk: Bool = false, maxRepetitions: Int = 25) async throws -> [VarBind] {
            var found: [VarBind] = []
            var cursor = root
            while true {
                let batch: [VarBind]
                if bulk, client.version == .v2c {
                    batch = try await request(.getBulkRequest, [VarBind(cursor, .null)], nonRepeaters: 0, maxRepetitions: maxRepetitions)
                } else {
                    do {
                        batch = try await next([cursor])
                    } catch let error as SNMPClientError where error.status == .noSuchName {
                        return found  // SNMPv1's end of the MIB
                    }
                }
                guard !batch.isEmpty else { return found }
                for bind in batch {
                    guard bind.value != .endOfMibView, bind.oid.hasPrefix(root), bind.oid > cursor else { return found }
                    found.append(bind)
                    cursor = bind.oid
                }
                guard found.count < 1_000_000 else { return found }
            }
        }
    }
}

extension SNMPValue {
    /// net-snmp's way of printing a value: `STRING: "x"`, `Timeticks: (123) 0:00:01.23`, …
    public var display: String {
        switch self {
        case .integer(let value): return "INTEGER: \(value)"
        case .octetString(let bytes):
            if let text = String(validating: bytes, as: UTF8.self), !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" && $0 != "\n" && $0 != "\r" }) {
                return "STRING: \"\(text)\""
            }
            return "Hex-STRING: " + bytes.map { byte in
                let hex = String(byte, radix: 16, uppercase: true)
                return hex.count == 1 ? "0" + hex : hex
            }.joined(separator: " ")
        case .null: return "NULL"
        case .objectIdentifier(let oid): return "OID: \(MIBNames.name(of: oid))"
        case .ipAddress(let bytes): return "IpAddress: " + bytes.map(String.init).joined(separator: ".")
        case .counter32(let value): return "Counter32: \(value)"
        case .gauge32(let value): return "Gauge32: \(value)"
        case .timeTicks(let value):
            let hundredths = value % 100
            let seconds = value / 100
            let text = "\(seconds / 86_400 > 0 ? "\(seconds / 86_400) days, " : "")\(seconds / 3600 % 24):\(pad(seconds / 60 % 60)):\(pad(seconds % 60)).\(pad(hundredths))"
            return "Timeticks: (\(value)) \(text)"
        case .opaque(let bytes): return "Opaque: \(bytes.count) octets"
        case .counter64(let value): return "Counter64: \(value)"
        case .noSuchObject: return "No Such Object available on this agent at this OID"
        case .noSuchInstance: return "No Such Instance currently exists at this OID"
        case .endOfMibView: return "No more variables left in this MIB View (It is past the end of the MIB tree)"
        }
    }

    /// The value alone, for tables: `InetKit`, `42`.
    public var plain: String {
        switch self {
        case .integer(let value): return "\(value)"
        case .octetString(let bytes):
            if let text = String(validating: bytes, as: UTF8.self), !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                return text
            }
            return bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: ":")
        case .objectIdentifier(let oid): return MIBNames.name(of: oid)
        case .ipAddress(let bytes): return bytes.map(String.init).joined(separator: ".")
        case .counter32(let value), .gauge32(let value), .timeTicks(let value): return "\(value)"
        case .counter64(let value): return "\(value)"
        default: return display
        }
    }

    /// Parses net-snmp's `TYPE VALUE` pairs for SET: i, u, c, t, a, o, s, x, C.
    public static func parse(type: String, value: String) -> SNMPValue? {
        switch type {
        case "i": return Int64(value).map { .integer($0) }
        case "u": return UInt32(value).map { .gauge32($0) }
        case "c": return UInt32(value).map { .counter32($0) }
        case "C": return UInt64(value).map { .counter64($0) }
        case "t": return UInt32(value).map { .timeTicks($0) }
        case "a":
            let parts = value.split(separator: ".").compactMap { UInt8($0) }
            return parts.count == 4 ? .ipAddress(parts) : nil
        case "o": return MIBNames.resolve(value).map { .objectIdentifier($0) }
        case "s": return .octetString(Array(value.utf8))
        case "x":
            // ASCII hex digits only (Character.isHexDigit also takes fullwidth ones, which
            // UInt8(_:radix:) refuses).
            let digits = Array(value.utf8.filter { $0 < 0x80 && Character(Unicode.Scalar($0)).isHexDigit })
            guard digits.count % 2 == 0 else { return nil }
            var bytes: [UInt8] = []
            for index in stride(from: 0, to: digits.count, by: 2) {
                guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(byte)
            }
            return .octetString(bytes)
        default: return nil
        }
    }
}

private func pad(_ value: UInt32) -> String {
    value < 10 ? "0\(value)" : "\(value)"
}
