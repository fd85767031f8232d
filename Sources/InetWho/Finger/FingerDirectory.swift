import InetCore

/// The people finger tells about: only the ones the config lists (`services.finger.users`),
/// never the machine's accounts.
public struct FingerDirectory: Sendable, Equatable {
    public struct User: Sendable, Equatable {
        public var name: String
        public var realName: String
        public var plan: String?

        public init(name: String, realName: String = "", plan: String? = nil) {
            self.name = name
            self.realName = realName
            self.plan = plan
        }
    }

    public var users: [User]
    /// Output lines are cut to this many characters.
    public var lineWidth: Int
    /// A plan shows at most this many lines.
    public var planLines: Int

    public init(users: [User] = [], lineWidth: Int = 200, planLines: Int = 100) {
        self.users = users
        self.lineWidth = lineWidth
        self.planLines = planLines
    }

    /// The users a name matches: the login name, or a word of the real name (as BSD finger
    /// matches), ignoring case.
    public func matching(_ name: String) -> [User] {
        let wanted = name.lowercased()
        return users.filter { user in
            user.name.lowercased() == wanted || user.realName.lowercased().split(separator: " ").contains { $0 == wanted }
        }
    }

    /// The whole reply to a query, CRLF-ended lines.
    public func answer(_ query: FingerQuery) -> String {
        if query.forward {
            return "finger: forwarding to other hosts is refused (RFC 1288 3.2.1)\r\n"
        }
        guard let name = query.user else {
            if users.isEmpty { return "No one logged on.\r\n" }
            if query.verbose { return users.map(long).joined(separator: "\r\n") }
            var out = line(pad("Login", 12) + "Name")
            for user in users { out += line(pad(user.name, 12) + user.realName) }
            return out
        }
        let found = matching(name)
        guard !found.isEmpty else { return line("finger: \(name): no such user.") }
        return found.map(long).joined(separator: "\r\n")
    }

    func long(_ user: User) -> String {
        var out = line(pad("Login: \(user.name)", 40) + "Name: \(user.realName)")
        if let plan = user.plan, !plan.isEmpty {
            out += "Plan:\r\n" + FingerText.lines(plan.hasSuffix("\n") ? String(plan.dropLast()) : plan, width: lineWidth, lines: planLines)
        } else {
            out += "No Plan.\r\n"
        }
        return out
    }

    func line(_ text: String) -> String {
        FingerText.printable(text.utf8, limit: lineWidth) + "\r\n"
    }

    func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    /// `services.finger.users: [{name, real_name, plan}]`.
    static func users(_ reader: ConfigReader?) throws(ConfigError) -> [User] {
        guard let reader, let list = reader.value("users") else { return [] }
        guard case .list(let items, _) = list else { throw reader.error("users", "expected a list of {name, real_name, plan}") }
        var users: [User] = []
        for item in items {
            let entry = try ConfigReader(item, file: reader.file, path: reader.keyPath("users"))
            try entry.rejectUnknownKeys(allowed: ["name", "real_name", "plan"])
            guard let name = try entry.string("name"), (1...32).contains(name.utf8.count),
                  name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != 0x40 }) else {
                throw entry.error("name", "each user needs a name: 1 to 32 printable ASCII characters, no spaces or @")
            }
            guard !users.contains(where: { $0.name.lowercased() == name.lowercased() }) else {
                throw entry.error("name", "\(name) is listed twice")
            }
            users.append(User(name: name, realName: try entry.string("real_name") ?? "", plan: try entry.string("plan")))
        }
        return users
    }
}
