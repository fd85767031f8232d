import InetCore

/// INETKIT-MIB's inetkitServiceTable: one row per service and transport of the host, read live
/// from InetCore's counters. Columns (under inetkitServiceEntry):
/// 2 name, 3 transport (tcp 1, udp 2), 4 port, 5 status (running 1, stopped 2),
/// 6 connections (Counter32), 7 active connections (Gauge32), 8 requests (Counter32: TCP
/// connections or UDP datagrams), 9 bytes in, 10 bytes out (Counter64), 11 errors,
/// 12 refused (Counter32), 13 datagrams dropped (Counter32), 14 worker restarts (Counter32).
enum ServiceTable {
    static let columns: [UInt32] = Array(2...14)

    static let objects: [OID] = columns.map { MIBOID.inetkitServiceEntry.appending($0) }

    struct Row {
        var name: String
        var transport: Transport
        var port: Int
        var running: Bool
        var counters: ServiceCounters.Snapshot
    }

    static func rows(_ services: [ServiceStatus]) -> [Row] {
        var rows: [Row] = []
        for service in services {
            for snapshot in service.counters {
                let port = service.listeners.first { $0.transport == snapshot.transport }?.port ?? 0
                rows.append(Row(name: service.name, transport: snapshot.transport, port: port,
                                running: service.enabled && service.state != "backoff", counters: snapshot))
            }
        }
        return rows
    }

    static func variables(_ services: [ServiceStatus]) -> [VarBind] {
        let rows = rows(services)
        var binds: [VarBind] = []
        binds.reserveCapacity(rows.count * columns.count)
        func c32(_ value: Int) -> SNMPValue { .counter32(UInt32(truncatingIfNeeded: value)) }
        for column in columns {
            for (offset, row) in rows.enumerated() {
                let value: SNMPValue
                let counts = row.counters
                switch column {
                case 2: value = .string(row.name)
                case 3: value = .integer(row.transport == .tcp ? 1 : 2)
                case 4: value = .integer(Int64(row.port))
                case 5: value = .integer(row.running ? 1 : 2)
                case 6: value = c32(counts.connections)
                case 7: value = .gauge32(UInt32(clamping: counts.activeConnections))
                case 8: value = c32(row.transport == .tcp ? counts.connections : counts.datagramsIn)
                case 9: value = .counter64(UInt64(max(0, counts.bytesIn)))
                case 10: value = .counter64(UInt64(max(0, counts.bytesOut)))
                case 11: value = c32(counts.errors)
                case 12: value = c32(counts.refusedConnections)
                case 13: value = c32(counts.datagramsDropped)
                default: value = c32(counts.restarts)
                }
                binds.append(VarBind(MIBOID.inetkitServiceEntry.appending(column, UInt32(offset + 1)), value))
            }
        }
        return binds
    }
}
