import HTTPTypes
import Hummingbird
import InetCore
import NIOCore

/// The dashboard at `<status_path>/`: one page, its own script and style sheet (embedded in the
/// binary: it works offline), live over the event stream. The page carries the services table
/// as the server sees it, so it says something without script too.
///
/// What the page shows came from peers, so the page may run only its own script: the policy
/// allows scripts and styles from this host alone, fetches and the stream to it alone, frames
/// only of it (the captured HTML, itself sandboxed), and no inline script, plugin, form or base.
enum Dashboard {
    static let policy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        + "frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static func asset(_ name: Substring) -> (body: String, type: String)? {
        switch name {
        case "dashboard.js": (DashboardAssets.script + "\n", "text/javascript; charset=utf-8")
        case "dashboard.css": (DashboardAssets.style + "\n", "text/css; charset=utf-8")
        default: nil
        }
    }

    static func headers(type: String, length: Int, cache: Bool = false) -> HTTPFields {
        [
            .contentType: type, .contentLength: String(length), .cacheControl: cache ? "public, max-age=300" : "no-store",
            .contentSecurityPolicy: policy,
            HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            HTTPField.Name("X-Frame-Options")!: "DENY",
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
        ]
    }

    static func page(_ services: [ServiceStatus], uptime: Double, statusPath: String) -> String {
        let base = HTML.escape(statusPath)
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="inetkit-base" content="\(base)">
            <title>InetKit</title>
            <link rel="icon" href="data:,">
            <link rel="stylesheet" href="\(base)/dashboard.css">
            <script src="\(base)/dashboard.js" defer></script>
            </head><body>
            <header><h1>InetKit</h1><span id="uptime">up \(Int(uptime)) s</span><span id="live-state" class="off">connecting…</span>
            <nav><a href="#overview">Overview <span class="badge" id="count-connections">0</span></a><a href="#events">Events</a>
            <a href="#mail">Mail <span class="badge" id="count-mail">0</span></a><a href="#dns">DNS <span class="badge" id="count-dns">0</span></a>
            <a href="#uploads">Uploads <span class="badge" id="count-uploads">0</span></a></nav></header>
            <div id="token-box" hidden><p>This host is reached over a non-loopback address: the dashboard needs its token
            (<code>events.dashboard_token</code>, or the one in <code>&lt;data_dir&gt;/dashboard.token</code>).</p>
            <input id="token-input" type="password" autocomplete="off" size="40"> <button id="token-use" type="button">Open</button></div>
            <p id="error" class="error" hidden></p>
            <main>
            <section id="tab-overview" class="tab">
            <h2>Services</h2>
            <table id="services"><thead><tr><th>Service</th><th>State</th><th>Transport</th><th>Listening on</th><th>Traffic</th><th>Bytes in</th><th>Bytes out</th><th>Errors</th><th>Restarts</th></tr></thead>
            <tbody>
            \(rows(services))</tbody></table>
            <h2>Live connections</h2>
            <table id="connections"><thead><tr><th>Id</th><th>Service</th><th>Peer</th><th>Port</th><th>Open for</th></tr></thead><tbody></tbody></table>
            <p id="connections-empty" class="note">No connection is open. Click one, or any event of a connection, for its transcript.</p>
            <p class="links note">Also: <a href="\(base)/status.json">status JSON</a> · <a href="\(base)/metrics">Prometheus metrics</a> ·
            <a href="\(base)/api/openapi.json">the API (OpenAPI)</a> · <a href="\(base)/events">the event stream</a></p>
            </section>
            <section id="tab-events" class="tab" hidden>
            <div class="filters">
            <select id="filter-service" aria-label="service"><option value="">all services</option></select>
            <input id="filter-peer" type="search" placeholder="peer (e.g. 127.0.0.1)" aria-label="peer">
            <input id="filter-text" type="search" placeholder="text" aria-label="text">
            <label><input id="filter-lines" type="checkbox"> transcript lines</label>
            <label><input id="filter-own" type="checkbox"> the dashboard's own requests</label>
            <label><input id="filter-pause" type="checkbox"> pause</label>
            <span id="feed-state" class="note"></span>
            </div>
            <table id="feed"><thead><tr><th>Id</th><th>Time (UTC)</th><th>Service</th><th>Kind</th><th>Conn</th><th>Peer</th><th>What</th></tr></thead><tbody></tbody></table>
            </section>
            <section id="tab-mail" class="tab" hidden>
            <div class="split"><div><ul id="mail-list"></ul><p id="mail-empty" class="note">No mail yet: send some to this host's SMTP port.</p></div>
            <div id="message-view"><p class="note">Pick a message.</p></div></div>
            </section>
            <section id="tab-dns" class="tab" hidden>
            <div class="filters"><input id="dns-filter" type="search" placeholder="name or peer" aria-label="filter"></div>
            <table id="dns"><thead><tr><th>Time (UTC)</th><th>Peer</th><th>Transport</th><th>Name</th><th>Type</th><th>Rcode</th><th>Answers</th><th>From</th></tr></thead><tbody></tbody></table>
            </section>
            <section id="tab-uploads" class="tab" hidden>
            <table id="uploads"><thead><tr><th>Uploaded (UTC)</th><th>Service</th><th>Peer</th><th>User</th><th>File</th><th>Size</th><th>SHA-256</th><th></th></tr></thead><tbody></tbody></table>
            <p id="uploads-empty" class="note">No uploads among the events the host keeps (FTP users with write: true, TFTP with write: true).</p>
            </section>
            </main>
            <aside id="detail" hidden><header><h2 id="detail-title"></h2><button id="detail-close" type="button" aria-label="close">×</button></header><div id="detail-body"></div></aside>
            <noscript><p class="note">The live views need JavaScript; the table above is as the page was served.</p></noscript>
            </body></html>

            """
    }

    /// The services as the page is served (the script replaces them with live ones).
    static func rows(_ services: [ServiceStatus]) -> String {
        var rows = ""
        for service in services {
            for counters in service.counters {
                let listeners = service.listeners.filter { $0.transport == counters.transport }.map { HTML.escape($0.address) }
                let traffic = counters.transport == .tcp
                    ? "\(counters.connections) connections (\(counters.activeConnections) open, \(counters.refusedConnections) refused)"
                    : "\(counters.datagramsIn) in, \(counters.datagramsOut) out, \(counters.datagramsDropped) dropped"
                rows += "<tr><td>\(HTML.escape(service.name))</td><td>\(HTML.escape(service.state))</td><td>\(counters.transport)</td>"
                    + "<td>\(listeners.isEmpty ? "not running" : listeners.joined(separator: " "))</td>"
                    + "<td>\(traffic)</td><td class=\"n\">\(counters.bytesIn)</td><td class=\"n\">\(counters.bytesOut)</td><td class=\"n\">\(counters.errors)</td>"
                    + "<td class=\"n\">\(service.restarts)</td></tr>\n"
            }
        }
        return rows
    }
}
