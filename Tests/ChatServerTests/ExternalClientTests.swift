import Testing

/// The tests that drive programs nobody here wrote (irssi, WeeChat, Chromium): one at a time.
/// Each starts heavy processes; all at once, beside the rest of the suite on two cores, they
/// starved one another (CI: WeeChat made no FIFO in 30 s while two browsers started).
@Suite(.serialized) enum ExternalClientTests {}
