import InetCore

/// The host's own pages: every service with its listeners and counters, as HTML, as JSON,
/// and as Prometheus text.
enum StatusPages {
    static func json(_ services: [ServiceStatus], uptime: Double) -> String {
        let items = services.map { service -> String in
            let listeners = service.listeners.map { "{\"transport\":\"\($0.transport)\",\"address\":\(JSON.quote($0.address)),\"port\":\($0.port)}" }
            let counters = service.counters.map { c in
                "{\"transport\":\"\(c.transport)\",\"connections\":\(c.connections),\"active_connections\":\(c.activeConnections),"
                    + "\"refused_connections\":\(c.refusedConnections),\"datagrams_in\":\(c.datagramsIn),\"datagrams_out\":\(c.datagramsOut),"
                    + "\"datagrams_dropped\":\(c.datagramsDropped),\"bytes_in\":\(c.bytesIn),\"bytes_out\":\(c.bytesOut),\"errors\":\(c.errors),"
                    + "\"restarts\":\(c.restarts)}"
            }
            return "{\"name\":\(JSON.quote(service.name)),\"running\":\(service.enabled),\"state\":\(JSON.quote(service.state)),\"restarts\":\(service.restarts),\"listeners\":[\(listeners.joined(separator: ","))],\"counters\":[\(counters.joined(separator: ","))]}"
        }
        return "{\"uptime_seconds\":\(Int(uptime)),\"services\":[\n\(items.joined(separator: ",\n"))\n]}\n"
    }

    static func metrics(_ services: [ServiceStatus], uptime: Double) -> String {
        let families: [(String, String, String, (ServiceCounters.Snapshot) -> Int)] = [
            ("inetkit_connections_total", "counter", "TCP connections accepted.", \.connections),
            ("inetkit_connections_active", "gauge", "TCP connections open now.", \.activeConnections),
            ("inetkit_connections_refused_total", "counter", "TCP connections closed at the max_connections limit.", \.refusedConnections),
            ("inetkit_datagrams_received_total", "counter", "UDP datagrams received.", \.datagramsIn),
            ("inetkit_datagrams_sent_total", "counter", "UDP datagrams sent.", \.datagramsOut),
            ("inetkit_datagrams_dropped_total", "counter", "UDP datagrams dropped (rate limit, full send buffer).", \.datagramsDropped),
            ("inetkit_bytes_received_total", "counter", "Bytes received.", \.bytesIn),
            ("inetkit_bytes_sent_total", "counter", "Bytes sent.", \.bytesOut),
            ("inetkit_errors_total", "counter", "Connections or exchanges that ended in an error.", \.errors),
        ]
        var text = "# HELP inetkit_uptime_seconds Seconds since the host started.\n# TYPE inetkit_uptime_seconds gauge\ninetkit_uptime_seconds \(Int(uptime))\n"
        text += "# HELP inetkit_service_up Whether the service is listening.\n# TYPE inetkit_service_up gauge\n"
        for service in services { text += "inetkit_service_up{service=\"\(service.name)\"} \(service.enabled && service.state != "backoff" ? 1 : 0)\n" }
        text += "# HELP inetkit_restarts_total Times the worker process serving the service died and was started again.\n# TYPE inetkit_restarts_total counter\n"
        for service in services { text += "inetkit_restarts_total{service=\"\(service.name)\"} \(service.restarts)\n" }
        for (name, type, help, value) in families {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for service in services {
                for counters in service.counters {
                    text += "\(name){service=\"\(service.name)\",transport=\"\(counters.transport)\"} \(value(counters))\n"
                }
            }
        }
        return text
    }
}
