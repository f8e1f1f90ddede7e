"""Single statements, with what was said next, and whether each shows a default question's "yes".

Written apart from the generated calls of cofi.devtools.audit_calls (the labelled-call benchmark) and
from the synthesized demo calls, in other words, to measure how a check generalizes to phrasings the
prompts were not written against. Used once so far to choose a setting (identity_verified: context 0,
after its checks failed on "Can you confirm your date of birth?" shown with the reply): to keep the
figure honest, add new statements here rather than tuning prompts until these pass.
"""

from __future__ import annotations

# question id -> (expected answer, [the statement, then what was said next]); "a:" agent, "c:" customer
STATEMENTS: dict[str, list[tuple[str, list[str]]]] = {
    "greeting": [
        ("yes", ['a:Hello, thanks for ringing Northwind Investments, Karen speaking.']),
        ("yes", ["a:Good evening, you've reached the Apex trading desk, this is Omar."]),
        ("yes", ['a:Hi there, welcome to BlueRock Securities.']),
        ("yes", ['a:Morning! Zenith Capital, Priya here.']),
        ("no", ['a:Yes, what do you want?']),
        ("no", ['a:Hold on.']),
        ("no", ["a:Okay, what's the symbol?"]),
        ("no", ['a:Thank you for your patience.']),
    ],
    "identity_verified": [
        ("yes", ['a:Can you confirm your date of birth?', 'c:Yes, it is the 5th of May.']),
        ("yes", ['a:Can you confirm your date of birth?', 'c:I want to sell 200 shares of State Bank of India at 80 dollars.']),
        ("yes", ['a:May I have your registered mobile number and PAN please?', 'c:It is 98200 12345, and my PAN is ABCDE1234F.']),
        ("yes", ['a:Could you tell me the last four digits of your account number?', "c:It's 4821."]),
        ("yes", ['a:What is your client ID, please?', "c:It's C77013."]),
        ("yes", ['a:Before I proceed I need to verify your identity.', 'a:What is your date of birth?', 'c:Twelfth of March, 1980.']),
        ("yes", ['a:Please confirm your full name and registered email address.', 'c:James Wilson, james at example dot com.']),
        ("no", ['a:Let me confirm, you want to sell 200 shares of State Bank of India at 80 dollars.', 'c:Yes, that is correct.']),
        ("no", ['a:Can you confirm the quantity you want to buy?', 'c:One hundred shares.']),
        ("no", ['a:Your order has been placed.', 'a:Thank you for calling, have a nice day.']),
        ("no", ['a:I know it is you, no need for any details.', 'c:Great, thanks.']),
        ("no", ['a:Please confirm the price.', 'c:Eighty dollars.']),
        ("no", ['a:Is there anything else I can help you with?', "c:No, that's all."]),
    ],
    "recording_disclosed": [
        ("yes", ['a:I should mention that this call may be recorded for training purposes.']),
        ("yes", ['a:All conversations on this line are taped for regulatory reasons.']),
        ("yes", ['a:Just to let you know, we monitor and record our calls.']),
        ("yes", ['a:This call is being recorded.']),
        ("no", ["a:I've recorded your order in the system."]),
        ("no", ['a:Let me make a note of that.']),
        ("no", ['a:The record date for the dividend is Friday.']),
        ("no", ['a:Our records show your last trade was in March.']),
    ],
    "trade_read_back": [
        ("yes", ["a:So just to repeat, you're buying 50 Infosys at 1,500 rupees, is that right?", 'c:Yes.']),
        ("yes", ['a:Reading it back, sell 300 Tata Motors at market, shall I go ahead?', 'c:Go ahead.']),
        ("yes", ["a:Okay, that's a buy of 20 Apple at 187 dollars, can you confirm?", 'c:Confirmed.']),
        ("yes", ['a:Let me confirm, you want to sell 200 shares of State Bank of India at 80 dollars.', 'c:Yes, that is correct.']),
        ("no", ['a:Okay, done.', 'c:Thanks.']),
        ("no", ["a:I'll place it right away.", 'c:Thanks.']),
        ("no", ['a:What quantity would you like?', 'c:Fifty.']),
        ("no", ['a:Which stock do you want to buy?', 'c:Infosys.']),
    ],
    "risk_disclosed": [
        ("yes", ['a:Remember that the value of shares can fall as well as rise.']),
        ("yes", ["a:You should know there's a risk you could lose some of your capital."]),
        ("yes", ["a:These returns aren't guaranteed."]),
        ("yes", ['a:Markets are volatile, so please invest only what you can afford to lose.']),
        ("no", ['a:The stock rose three percent today.']),
        ("no", ["a:It's a great company, very safe."]),
        ("no", ['a:Prices are updated every second.']),
        ("no", ['a:Your order is guaranteed to be placed today.']),
    ],
    "agent_rude": [
        ("yes", ["a:Look, I don't have all day, just tell me the number."]),
        ("yes", ['a:Are you even listening to me?']),
        ("yes", ["a:That's a stupid question."]),
        ("yes", ["a:I've explained this three times already, seriously."]),
        ("no", ["a:Take your time, there's no rush."]),
        ("no", ['a:Sorry for the wait.']),
        ("no", ['a:Could you repeat that, please? The line is bad.']),
        ("no", ['a:I understand, let me check that for you.']),
    ],
}
