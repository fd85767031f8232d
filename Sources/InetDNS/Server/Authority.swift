/// Answers queries from a set of zones the way an authoritative server must (RFC 1034 4.3.2,
/// RFC 2308, RFC 4592, RFC 6891): pure, so every rule is unit-tested without sockets.
public struct Authority: Sendable {
    public let zones: [Zone]

    /// The largest UDP payload this server sends, whatever the client offers (RFC 6891 6.2.5).
    public static let maximumUDPPayload: UInt16 = 1232
    /// CNAME chains longer than this stop (and are answered as far as followed).
    static let maximumChain = 16

    public init(zones: [Zone]) {
        self.zones = zones.sorted { $0.origin.labels.count > $1.origin.labels.count }
    }

    /// The zone that holds `name`: the one with the longest matching origin.
    func zone(for name: DNSName) -> Zone? {
        zones.first { name.isSubdomain(of: $0.origin) }
    }

    /// The response to a decoded query (without size limits; the caller encodes with them).
    public func respond(to query: DNSMessage) -> DNSMessage {
        var response = DNSMessage(
            id: query.id, isResponse: true, opcode: query.opcode, recursionDesired: query.recursionDesired,
            checkingDisabled: query.checkingDisabled, questions: query.questions)
        if let edns = query.edns {
            response.edns = EDNS(udpPayloadSize: Self.maximumUDPPayload, version: 0, dnssecOK: edns.dnssecOK)
            guard edns.version == 0 else {
                response.rcode = DNSRCode.badVers
                return response
            }
        }
        guard query.opcode == 0 else {
            response.rcode = DNSRCode.notImp
            return response
        }
        guard !query.isResponse, query.questions.count == 1, let question = query.questions.first else {
            response.rcode = DNSRCode.formErr
            return response
        }
        guard question.qclass == .internet || question.qclass == .any, let zone = zone(for: question.name) else {
            response.rcode = DNSRCode.refused
            return response
        }
        answer(question, in: zone, into: &response)
        // Like NSD and BIND: a positive authoritative answer carries the zone's NS records in
        // the authority section, and their addresses in the additional section.
        if response.authoritative, response.rcode == DNSRCode.noError, !response.answers.isEmpty, response.authority.isEmpty {
            let servers = zone.rrset(zone.origin, .ns)
            // Not when the answer leaves the zone through a CNAME (NSD does the same).
            var leavesZone = false
            if question.type != .cname, case .cname(let target)? = response.answers.last?.data, !target.isSubdomain(of: zone.origin) { leavesZone = true }
            if !(question.type == .ns && question.name == zone.origin) && !leavesZone {
                response.authority = servers
                addGlue(for: servers.compactMap(\.data.additionalTarget), from: zone, into: &response)
            }
        }
        return response
    }

    private func answer(_ question: DNSQuestion, in zone: Zone, into response: inout DNSMessage) {
        var name = question.name
        var followed = Set<DNSName>()
        response.authoritative = true
        while true {
            // A delegation on the way down: refer, not authoritative (RFC 1034 4.3.2 3b).
            if let cut = zone.delegation(above: name), !(cut == name.lowercased && question.type == .ds) {
                if response.answers.isEmpty { response.authoritative = false }
                let servers = zone.rrset(cut, .ns)
                response.authority += servers
                addGlue(for: servers.compactMap(\.data.additionalTarget), from: zone, into: &response)
                return
            }
            // The node itself, or else (RFC 4592 3.3.1) the "*" child of the closest encloser,
            // whose records are given the asked name.
            var source = zone.node(name)
            if source == nil {
                if zone.exists(name) {
                    // An empty non-terminal: the name exists, with no data (NODATA).
                    response.authority = [zone.negativeSOA]
                    return
                }
                var encloser = name.parent
                while let current = encloser, !zone.exists(current) { encloser = current.parent }
                if let encloser, let star = try? encloser.prepending([UInt8(ascii: "*")]) { source = zone.node(star) }
            }
            if let node = source {
                let owned = { (record: DNSRecord) -> DNSRecord in
                    var copy = record
                    copy.name = name
                    return copy
                }
                if let cname = node[.cname]?.first, question.type != .cname, question.type != .any {
                    guard followed.insert(name.lowercased).inserted else { return }
                    response.answers.append(owned(cname))
                    guard case .cname(let target) = cname.data, followed.count < Self.maximumChain,
                          target.isSubdomain(of: zone.origin) else { return }
                    name = target
                    continue
                }
                let records = (question.type == .any ? node.values.flatMap { $0 } : (node[question.type] ?? [])).map(owned)
                if records.isEmpty {
                    response.authority = [zone.negativeSOA]
                } else {
                    response.answers += records
                    addAdditional(for: records, from: zone, into: &response)
                }
                return
            }
            // NXDOMAIN is about the last name in the chain (RFC 6604).
            response.rcode = DNSRCode.nxDomain
            response.authority = [zone.negativeSOA]
            return
        }
    }

    private func addAdditional(for records: [DNSRecord], from zone: Zone, into response: inout DNSMessage) {
        addGlue(for: records.compactMap(\.data.additionalTarget), from: zone, into: &response)
    }

    /// A and AAAA records of `targets` that the zone holds, once each.
    private func addGlue(for targets: [DNSName], from zone: Zone, into response: inout DNSMessage) {
        for target in targets where target.isSubdomain(of: zone.origin) {
            for type in [DNSType.a, .aaaa] {
                for record in zone.rrset(target, type) where !response.additional.contains(record) && !response.answers.contains(record) {
                    response.additional.append(record)
                }
            }
        }
    }
}

extension DNSType {
    public static let ds = DNSType(rawValue: 43)
}
