import IRC

/// HELP [subject]: a short text for every command the server knows (704, 705, 706; 524 for an
/// unknown subject).
enum HelpCommand {
    static let topics: [String: [String]] = [
        "*": ["SecureChat speaks IRC over TLS. Commands:",
              "AWAY CAP CHATHISTORY HELP INVITE ISON JOIN KICK LIST LUSERS MARKREAD MODE MONITOR MOTD NAMES",
              "NOTICE OWNER PART PING PRIVMSG QUIT SETNAME TAGMSG TIME TOPIC USERHOST WHO WHOIS WHOWAS",
              "Server operators: OPER KILL WALLOPS KLINE UNKLINE STATS CLEARCHAN",
              "HELP <command> explains one. Your nick is your account name."],
        "CHATHISTORY": ["CHATHISTORY LATEST|BEFORE|AFTER|AROUND <target> <* | timestamp=… | msgid=…> <limit>,",
                        "CHATHISTORY BETWEEN <target> <ref> <ref> <limit>, CHATHISTORY TARGETS <timestamp> <timestamp> <limit>:",
                        "what was said (needs the draft/chathistory capability; at most 100 at a time)."],
        "MARKREAD": ["MARKREAD <target> [timestamp=…]   where you have read up to (draft/read-marker); it only moves forward."],
        "OWNER": ["OWNER <#room> [<account>]   who owns the room, or (the owner) hand it to another account.",
                  "The owner is made operator whenever it joins."],
        "CLEARCHAN": ["CLEARCHAN <#room> [:<reason>]   (server operators) removes everyone but server operators;",
                      "an emptied room is gone, with its topic, modes and bans."],
        "KILL": ["KILL <nick> [:<reason>]   (server operators) ends someone's connection; their rooms see why.",
                 "They may log in again: to keep them out, use KLINE."],
        "KLINE": ["KLINE [<duration>] <account|address|range> [:<reason>]   (server operators) bans from the server:",
                  "an account (alice), an address (192.0.2.7) or a range (192.0.2.0/24, 2001:db8::/32).",
                  "Duration: 30m, 12h, 7d, 2w, a number of minutes, or none for no end. Their sessions end now.",
                  "Stored with the accounts: it survives restarts. The shell's form: chat-admin ban add."],
        "OPER": ["OPER <your account> <your password>   become a server operator, if your account has the",
                 "operator role (chat-admin role NAME operator). MODE <your nick> -o gives it up."],
        "STATS": ["STATS k   (server operators) the server bans in force: target, end, who set it, reason."],
        "UNKLINE": ["UNKLINE <account|address|range>   (server operators) lifts a server ban."],
        "WALLOPS": ["WALLOPS :<text>   (server operators) a message to everyone with user mode +w (MODE <nick> +w)."],
        "AWAY": ["AWAY :<text>   marks you away (people who message you are told);", "AWAY           marks you back."],
        "CAP": ["CAP LS 302 / CAP REQ :<caps> / CAP LIST / CAP END   IRCv3 capability negotiation."],
        "HELP": ["HELP [<command>]   this help."],
        "INVITE": ["INVITE <nick> <#room>   invites someone; in a +i or +k room only operators invite."],
        "ISON": ["ISON <nick> [<nick>...]   which of these are online."],
        "JOIN": ["JOIN <#room>[,<#room>...] [<key>,...]   joins (and creates) rooms; JOIN 0 leaves them all."],
        "KICK": ["KICK <#room> <nick> [:<reason>]   removes someone (operators)."],
        "LIST": ["LIST [<filters>]   rooms with their member counts and topics. Filters, comma-separated:",
                 "#name or a mask (#dev*), !mask to leave rooms out, >n and <n for the member count."],
        "LUSERS": ["LUSERS   how many users and rooms there are."],
        "MODE": ["MODE <#room> [<changes> [<arguments>]]   room modes (operators change them):",
                 "+i invite only, +k <key>, +l <count>, +m moderated, +n no outside messages, +s secret,",
                 "+t topic by operators, +o/+v <nick> operator/voice, +b <mask|~a:account|~m:mask> ban or mute.",
                 "MODE #room b lists the bans. MODE <your nick> [+B|-B]: bot mode; +w: receive WALLOPS;",
                 "-o: stop being a server operator."],
        "MONITOR": ["MONITOR + <nicks> / - <nicks> / C / L / S   be told when these accounts log in and out."],
        "MOTD": ["MOTD   the message of the day."],
        "NAMES": ["NAMES <#room>   who is in a room (@ operator, + voice)."],
        "NOTICE": ["NOTICE <target> :<text>   like PRIVMSG, but nothing answers it automatically."],
        "PART": ["PART <#room>[,<#room>...] [:<reason>]   leaves rooms."],
        "PING": ["PING <token>   the server answers PONG <token>."],
        "PRIVMSG": ["PRIVMSG <#room|nick>[,...] :<text>   sends a message (@#room: to its operators only)."],
        "QUIT": ["QUIT [:<reason>]   leaves the server."],
        "SETNAME": ["SETNAME :<real name>   changes your real name (shown in WHO and WHOIS)."],
        "TAGMSG": ["TAGMSG <target>   a message with client tags only (typing notices); needs message-tags."],
        "TIME": ["TIME   the server's time."],
        "TOPIC": ["TOPIC <#room> [:<text>]   shows or sets the topic (+t: operators only)."],
        "USERHOST": ["USERHOST <nick> [<nick>...]   their masks and away state."],
        "WHO": ["WHO <#room|nick> [%<fields>[,<token>]]   who is there; with WHOX fields (tcuihsnfdlaor)."],
        "WHOIS": ["WHOIS <nick>   who someone is: account, rooms, idle time, away, bot."],
        "WHOWAS": ["WHOWAS <nick> [<count>]   who last used a nick, and when they left."],
    ]

    static func help(_ message: IRCMessage, _ c: inout CommandContext) {
        let subject = message.parameters.first?.uppercased() ?? "*"
        guard let lines = topics[subject] else {
            c.out.numeric(.helpNotFound, message.parameters[0], "No help available on this topic: HELP lists the commands")
            return
        }
        let shown = subject == "*" ? "*" : subject
        c.out.numeric(.helpStart, shown, lines[0])
        for line in lines.dropFirst() { c.out.numeric(.helpText, shown, line) }
        c.out.numeric(.endOfHelp, shown, "End of /HELP")
    }
}
