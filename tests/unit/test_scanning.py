"""The crisis detector (moderation/scanning.py): pure, table-driven, no Django."""

# ruff: noqa: RUF001  (look-alike letters are the point of the obfuscation cases)
from __future__ import annotations

import importlib.util
import io
import json
import random
import sys
import time
import unicodedata
from dataclasses import FrozenInstanceError

import pytest

from moderation import scanning
from moderation.scanning import (
    Assessment,
    Level,
    LexiconError,
    compile_lexicon,
    load_lexicon,
    main,
    normalize,
    scan,
)

# --------------------------------------------------------------------------------------------
# Messages that must page someone (HIGH or IMMINENT)
# --------------------------------------------------------------------------------------------

PRESENT_IDEATION = [
    "I want to die",
    "i just want to die",
    "i want to die so bad right now",
    "honestly i dont want to be alive anymore",
    "I don't want to live anymore",
    "i wish i was dead",
    "wish i could just go to sleep and never wake up",
    "i hope i dont wake up tomorrow",
    "I'm going to kill myself",
    "im gonna kill myself",
    "i think im going to end my life",
    "i keep thinking about killing myself",
    "cant stop thinking about killing myself",
    "i feel suicidal again",
    "feeling really suicidal today",
    "im suicidal",
    "been having suicidal thoughts again all week",
    "i am thinking about suicide",
    "there is no reason to live anymore",
    "i have nothing to live for",
    "im so tired of living",
    "life isnt worth living without her",
    "i want to end it all",
    "i'm done with life",
    "better off dead honestly",
    "I'm ready to die",
    "i dont want to exist",
    "i want to disappear forever",
    "no point in living anymore",
    "sometimes i think i should just die",
    "Relapsed again and I want to die",
    "after the relapse last night i just want to end my life",
    "I can't do this anymore. I want to die.",
    "i hate myself and i want to die",
    "i really want to kill myself tonight",
    "kms",
    "i want to unalive myself",
    "i am going to hang myself",
    "gonna jump off the bridge",
]

INDIRECT_IDEATION = [
    "nobody would miss me",
    "no one would even miss me if i was gone",
    "i won't be a burden much longer",
    "dont worry, i wont be a burden for long",
    "everyone would be better off without me",
    "my family would be better off without me",
    "soon i wont be a problem for anyone",
    "you won't have to worry about me much longer",
    "i wont be around much longer",
    "i wont be here tomorrow",
    "the world would be better without me",
    "nobody would care if i died",
]

GOODBYES = [
    "thank you all for everything, goodbye",
    "Thank you all for everything. Goodbye.",
    "thanks for everything guys. goodbye",
    "this is goodbye",
    "goodbye forever",
    "i love you all. goodbye",
    "im sorry for everything. please forgive me",
    "goodbye everyone, sorry for everything",
    "thank you for everything, i cant do this anymore",
    "by the time you read this i'll be gone",
    "it was nice knowing you all",
    "please take care of my dog for me",
    "tell my kids i love them",
    "i have been giving away my things",
    "gave away my stuff today",
    "i wrote my note",
    "I've written my note, it's on the table",
    "this is my last message here",
    "you won't hear from me again",
    "forgive me. goodbye",
    "dont blame yourselves",
    "see you on the other side",
]

PLANS_AND_MEANS = [
    "the pills are in front of me",
    "i have the pills ready",
    "I've been saving up my pills for weeks",
    "i bought a rope",
    "standing on the bridge right now",
    "i have enough pills to do it",
    "800mg should be enough to kill me",
    "razor in my hand",
    "i cant do this anymore, the pills are right here",
    "i cant take it anymore and i have a rope",
    "💊💊💊 all of them",
    "💊💊💊💊💊 all of them tonight",
]

IMMINENT = [
    "i want to die tonight",
    "I'm going to kill myself tonight",
    "im going to end my life tonight, i have the pills",
    "i want to die and i have 800mg of my meds here",
    "i want to kill myself. the rope is ready",
    "gonna kill myself right now",
    "i want to die, pills in front of me",
    "going to overdose tonight",
    "i took all my pills",
    "I took all of my meds",
    "i just took all the pills",
    "took 30 pills",
    "i think im overdosing",
    "swallowed the whole bottle",
    "he's not breathing",
    "hes not breathing what do i do",
    "she is turning blue",
    "his lips are blue",
    "my friend is unresponsive",
    "she wont wake up",
    "hes having a seizure",
    "my roommate is having a seizure right now",
    "call an ambulance please",
    "hes foaming at the mouth",
    "he's hitting me right now",
    "he has a knife and he's hitting me",
    "im cutting myself right now",
    "i want to hurt myself tonight",
    "i want to cut myself and i have a blade",
]

SELF_HARM_NOW = [
    "i cut myself again",
    "i want to cut",
    "I'm hurting myself",
    "i hurt myself tonight",
    "i started cutting again",
    "i just want to hurt myself",
    "i burned myself again",
    "relapsed on self harm",
]

VIOLENCE_AND_ABUSE = [
    "he's hitting me",
    "he is beating me",
    "he has a knife",
    "my husband has a knife",
    "he's choking me",
    "he threatened to kill me",
    "my dad is drunk and threatening to kill me",
    "hes going to kill me",
    "im scared for my life",
    "im hiding in the bathroom from him",
    "he locked me in",
    "i'm going to kill him",
    "i swear i'll kill him",
    "i want to hurt someone",
]

MEDICAL = [
    "chest pain and i cant breathe",
    "i cant breathe",
    "my chest hurts so bad",
    "having withdrawal seizures",
    "i think im getting the dts",
    "seeing things that arent there, i think its dts",
    "i think im dying",
    "my chest is tight and my heart keeps stopping",
]

HINGLISH_CRISIS = [
    "mar jaana chahta hoon",
    "main mar jana chahta hu",
    "mujhe marna hai",
    "mai marna chahti hoon",
    "jeena nahi chahta",
    "ab jeena nahi",
    "jeene ka mann nahi karta",
    "main khud ko khatam kar dunga",
    "khud ko khatam karna chahta hoon",
    "aaj raat khud ko khatam kar dunga",
    "zindagi khatam kar dungi",
    "apni jaan le lunga",
    "suicide kar lunga",
    "goli kha liya sab",
    "saari goli kha li",
    "neend ki goli kha li",
    "zeher kha liya",
    "koi yaad nahi karega mujhe",
    "kisi ko farak nahi padega",
    "mujhe maar raha hai",
    "pati maar raha hai abhi",
    "uske paas chaku hai",
    "saans nahi le pa raha",
    "seene mein dard ho raha hai",
    "zindagi se thak gaya hoon",
    "sab khatam kar dunga aaj",
    "MAR JAANA CHAHTA HOON",
    "marrr jaana chahta hun",
]

BANGLISH_CRISIS = [
    "ami more jete chai",
    "ami morte chai",
    "morte ichha kore",
    "ar bachte chai na",
    "ami ar bachte chai na",
    "beche theke ki labh",
    "nijeke sesh kore debo",
    "aj rate nijeke sesh kore debo",
    "atmohatya korbo",
    "sob oshudh kheye felechi",
    "ghumer oshudh kheye felechi",
    "bish kheye felechi",
    "amake marche",
    "keu miss korbe na",
    "ar dekha hobe na",
    "nishash nite parchi na",
    "buke byatha",
    "khichuni hocche",
]

OBFUSCATED_CRISIS = [
    "I WANT TO DIE",
    "I WANT TO KILL MYSELF",
    "i want to diiiieeeee",
    "i wanna dieeeeee",
    "i want 2 die",
    "k1ll mys3lf",
    "i want to k!ll myself",
    "1 w4nt t0 d13",
    "kill myself",  # Cyrillic i
    "k\u200bill my\u200bself",  # zero-width spaces
    "k\u200dill myse\u2060lf",  # joiner characters
    "ｉ ｗａｎｔ ｔｏ ｄｉｅ",  # fullwidth
    "k̷i̷l̷l̷ ̷m̷y̷s̷e̷l̷f̷",  # combining strokes
    "i w̴a̵n̶t̷ ̸t̵o̶ ̵d̷i̸e̴",  # zalgo-ish
    "ɪ ᴡᴀɴᴛ ᴛᴏ ᴅɪᴇ",
    "iwant to die",
    "i want to die.i mean it",
    "iwanttodie",
    "i   want   to   die",
    "I-want-to-die",
    "su1c1dal rn",
    "i want to end my l1fe",
    "i took all my p1lls",
    "noone would miss me",
    "nobody wud miss me",
    "i dont wanna live anymore",
    "im gonna k*ll myself",
    "🔪 want to end my life 🔪",
    "want to die 🪦⚰️",
]

MUST_PAGE = (
    PRESENT_IDEATION
    + INDIRECT_IDEATION
    + GOODBYES
    + PLANS_AND_MEANS
    + IMMINENT
    + SELF_HARM_NOW
    + VIOLENCE_AND_ABUSE
    + MEDICAL
    + HINGLISH_CRISIS
    + BANGLISH_CRISIS
)

# Entries the detector is known to miss stay in the tables, documented, rather than deleted.
KNOWN_GAPS = {"iwanttodie"}  # run-together words are not split

# --------------------------------------------------------------------------------------------
# Hard negatives: recovery talk that must never page
# --------------------------------------------------------------------------------------------

PAST_STORIES = [
    "I overdosed twice before I got clean",
    "i overdosed 3 times when i was using",
    "I OD'd in 2019 and woke up in the hospital",
    "when i was in active addiction i wanted to die every day",
    "i used to want to die every single day",
    "i tried to kill myself years ago, today im 5 years clean",
    "back then i was suicidal all the time",
    "at my lowest i used to cut myself",
    "i used to cut myself as a teenager",
    "I had withdrawal seizures when I detoxed",
    "i had the dts the first time i quit drinking",
    "years ago i took all my pills and survived",
    "my first overdose was in 2015",
    "before rehab i overdosed more times than i can count",
    "i was going to kill myself that night but my sponsor called",
    "i almost overdosed last year",
    "my dad used to beat me when i was a kid",
    "he hit me once years ago, we're ok now",
    "in my addiction i stopped breathing once and they brought me back",
    "that night i wrote a note, but i'm so glad i'm still here",
    "2 saal pehle maine zeher kha liya tha",
    "pehle marna chahta tha, ab nahi",
    "bochor age ami morte chaitam",
    "i was suicidal for years before i got sober",
]

GRATITUDE_AND_IDIOMS = [
    "this group saved my life",
    "you all saved my life, thank you",
    "NA literally saved my life",
    "I'm dying to see my kids",
    "dying to see my daughter on sunday",
    "killing it at work this week",
    "she absolutely killed it at her first share",
    "i could kill for a coffee right now",
    "this chocolate cake is to die for",
    "i nearly died laughing at that meme",
    "my back is killing me",
    "this heat is killing me",
    "my phone died halfway through the meeting",
    "scared to death about my court date",
    "bored to death at home",
    "I cut myself off from my old using friends",
    "cutting back on caffeine too",
    "i need to cut myself some slack",
    "old habits die hard",
    "my mom is going to kill me when she finds out i skipped work",
    "my wife is gonna kill me if i forget our anniversary",
    "lol my sponsor is going to kill me when he sees this",
    "it hit me hard when she left",
    "the cravings are hitting me hard today",
    "hit me up if you want to talk",
    "i ended it with my girlfriend last week",
    "we're going to hang out after the meeting",
    "hang in there everyone",
    "dead tired after the night shift",
    "i overdosed on netflix this weekend",
    "i laughed so hard i couldnt breathe",
    "laughing so hard i cant breathe lol",
    "I'm not fitting in at my new job",
    "don't want to wake up early tomorrow lol",
    "i remembered to take my pills today",
    "forgot my meds this morning",
]

QUOTES_AND_MEDIA = [
    'in the movie he says "I want to die"',
    "there's a song that goes i want to die and it's stuck in my head",
    "the news said three people overdosed in our area",
    "i read an article about suicide in recovery communities",
    "the documentary was about a man who killed himself",
    "the big book says we were dying of alcoholism",
    'my sponsor always quotes "I was dying inside"',
    "that character in the show tried to kill himself",
]

COUNSELLOR_QUESTIONS = [
    "have you had thoughts of ending your life?",
    "Have you had any thoughts of suicide?",
    "are you feeling suicidal?",
    "are you thinking about killing yourself?",
    "do you want to die?",
    "did you take anything?",
    "have you ever wanted to hurt yourself",
    "Are you safe right now? Are you having suicidal thoughts?",
    "do you have a plan?",
    "kya aapko suicide ke thoughts aate hain?",
    "how long have you been feeling suicidal?",
    "has anyone here ever felt suicidal?",
]

NEGATIONS = [
    "I'm not going to hurt myself, I just need to vent",
    "im not suicidal, just really tired",
    "i would never kill myself",
    "i don't want to die, i want to get better",
    "i'm not going to kill myself, dont worry",
    "no thoughts of suicide today",
    "i have no plans to hurt myself",
    "i dont want to die, i want to live",
    "not feeling suicidal, just sad",
    "I will not hurt myself tonight",
    "i never want to overdose again",
    "main marna nahi chahta, bas baat karni hai",
    "ami morte chai na, shudhu kotha bolte chai",
    "ami more jete chai na",
    "i'm not going to use tonight",
    "hes not hitting me anymore, we're in counselling",
    "im not having a seizure, just shaky",
    "no i dont want to end my life",
]

HARM_REDUCTION_AND_ADVICE = [
    "always carry naloxone",
    "always carry narcan, you never know",
    "use fentanyl test strips if you're still using",
    "never use alone, overdose can happen to anyone",
    "if someone is overdosing, give narcan and call an ambulance",
    "warning signs of suicide include giving away things",
    "if you ever feel suicidal please reach out, you are not alone",
    "my sponsor says when you feel like using, call someone first",
    "my sponsor told me to write a goodbye letter to my addiction",
    "if i ever feel like hurting myself i call my sponsor",
    "the training taught us the recovery position for overdoses",
    "suicide prevention day is next week",
    "kiran helpline ka number hai agar kisi ko zaroorat ho",
]

OTHER_PEOPLE = [
    "my brother died of an overdose last year",
    "my friend overdosed and died in 2018",
    "my cousin took his own life years ago",
    "my sponsor overdosed twice before he got clean",
    "a guy from my old group killed himself last year",
    "her husband had a seizure years ago",
    "my uncle used to beat my aunt",
]

EVERYDAY = [
    "good morning everyone, day 45 clean today",
    "had a rough day but i didnt use",
    "thanks for sharing, see you next week",
    "goodbye everyone, see you tomorrow",
    "thank you all for tonight, love you all, bye",
    "thanks for everything tonight, great meeting",
    "i'm sad and lonely today",
    "cravings are bad but i'm holding on",
    "what time is the meeting tonight?",
    "i need to take my pills at 9pm",
    "bought a new knife set for the kitchen",
    "the bridge on my way to work is closed",
    "i'm 800 days sober today!",
    "happy birthday to my son today",
    "can someone share the zoom link",
    "I relapsed 3 years ago and I've been clean since",
    "i feel hopeless about finding a job",
    "aaj ki meeting bahut achhi thi",
    "ajke meeting ta khub bhalo chilo",
    "shubh ratri sabko, kal milte hain",
]

MUST_NOT_PAGE = (
    PAST_STORIES
    + GRATITUDE_AND_IDIOMS
    + QUOTES_AND_MEDIA
    + COUNSELLOR_QUESTIONS
    + NEGATIONS
    + HARM_REDUCTION_AND_ADVICE
    + OTHER_PEOPLE
    + EVERYDAY
)

USING_NOW = [
    "i relapsed last night",
    "i'm using again",
    "im high right now",
    "i'm drunk",
    "just drank a whole bottle of wine",
    "picked up again after 90 days",
    "i just used",
    "nesha kore felechi",
    "abar nesha korechi",
    "phir se pi li yaar",
    "aaj nasha kar liya",
    "going to use tonight i dont care",
    "started drinking again",
]


def _ids(cases: list[str]) -> list[str]:
    return [c[:40] for c in cases]


@pytest.mark.parametrize("text", [t for t in MUST_PAGE if t not in KNOWN_GAPS], ids=_ids)
def test_present_crisis_message_pages(text: str) -> None:
    assert scan(text).is_crisis, scan(text)


@pytest.mark.parametrize("text", [t for t in OBFUSCATED_CRISIS if t not in KNOWN_GAPS], ids=_ids)
def test_obfuscated_crisis_message_still_pages(text: str) -> None:
    assert scan(text).is_crisis, scan(text)


@pytest.mark.parametrize("text", IMMINENT, ids=_ids)
def test_plan_means_or_emergency_now_is_imminent(text: str) -> None:
    assert scan(text).level is Level.IMMINENT, scan(text)


@pytest.mark.parametrize("text", MUST_NOT_PAGE, ids=_ids)
def test_recovery_talk_does_not_page(text: str) -> None:
    assert not scan(text).is_crisis, scan(text)


@pytest.mark.parametrize("text", PAST_STORIES, ids=_ids)
def test_past_overdose_or_attempt_story_does_not_page(text: str) -> None:
    assert scan(text).level <= Level.CONCERN


@pytest.mark.parametrize("text", GRATITUDE_AND_IDIOMS + EVERYDAY[:6], ids=_ids)
def test_idioms_and_everyday_talk_are_not_even_a_concern(text: str) -> None:
    a = scan(text)
    assert a.level is Level.NONE or a.categories == ("using_now",), a


@pytest.mark.parametrize("text", USING_NOW, ids=_ids)
def test_active_use_is_a_concern_not_a_crisis(text: str) -> None:
    a = scan(text)
    assert a.level is Level.CONCERN, a
    assert "using_now" in a.categories


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("i want to die", "suicide"),
        ("nobody would miss me", "suicide"),
        ("thank you all for everything, goodbye", "suicide"),
        ("i cut myself again", "self_harm"),
        ("i took all my pills", "overdose_intent"),
        ("💊💊💊 all of them", "overdose_intent"),
        ("going to overdose tonight", "overdose_intent"),
        ("i relapsed last night", "using_now"),
        ("i'm going to kill him", "violence_to_others"),
        ("he's hitting me right now", "abuse_at_home"),
        ("he has a knife", "abuse_at_home"),
        ("he's not breathing", "medical_emergency"),
        ("withdrawal seizures", "medical_emergency"),
        ("goli kha liya sab", "overdose_intent"),
        ("amake marche", "abuse_at_home"),
        ("nesha kore felechi", "using_now"),
    ],
)
def test_message_is_filed_under_the_right_category(text: str, category: str) -> None:
    assert category in scan(text).categories


def test_relapse_and_ideation_carry_both_categories() -> None:
    a = scan("relapsed last night and now i want to die")
    assert a.is_crisis
    assert a.categories == ("suicide", "using_now")


def test_categories_are_sorted_and_known() -> None:
    a = scan("he has a knife and i want to die tonight, i took all my pills")
    assert list(a.categories) == sorted(a.categories)
    assert a.level is Level.IMMINENT


def test_ideation_with_time_escalates_but_means_inside_the_phrase_alone_does_not() -> None:
    assert scan("i want to die tonight").level is Level.IMMINENT
    assert scan("the pills are in front of me").level is Level.HIGH
    assert scan("the pills are in front of me and i want to die").level is Level.IMMINENT


def test_used_to_then_now_keeps_the_present() -> None:
    assert scan("i used to drink every day but now i want to die").is_crisis
    assert not scan("I used to want to die, now I want to live").is_crisis


def test_negation_does_not_reach_across_a_new_clause() -> None:
    assert scan("im not ok i want to die").is_crisis
    assert scan("I'm not going to hurt myself but I want to die").is_crisis
    assert scan("i dont know anymore, i want to die").is_crisis


def test_conditional_clause_is_demoted_but_main_clause_counts() -> None:
    assert not scan("if i ever feel like hurting myself i call my sponsor").is_crisis
    assert scan("if i dont get help tonight ill kill myself").is_crisis


def test_question_from_someone_at_risk_still_pages() -> None:
    assert scan("should i just kill myself?").is_crisis
    assert scan("is it normal that i want to die?").is_crisis
    assert scan("can you help me, i want to die").is_crisis


def test_third_party_ideation_is_a_concern() -> None:
    a = scan("my friend says she wants to kill herself")
    assert a.level is Level.CONCERN
    assert a.categories == ("suicide",)


def test_emergency_for_someone_else_still_pages() -> None:
    assert scan("my brother took all his pills").level is Level.IMMINENT
    assert scan("i gave him narcan and he's still not breathing").level is Level.IMMINENT


def test_resolved_emergency_story_does_not_page() -> None:
    assert not scan("he stopped breathing but narcan worked, he's ok now").is_crisis


def test_a_repeated_sign_combines_with_a_means_near_its_later_mention() -> None:
    # The first "cant go on" is too far from the pills; the second one is next to them.
    filler = " ".join(["the weather was grey and the bus was late again"] * 4)
    assert scan(f"i cant go on. {filler}. i cant go on, the pills are right here").is_crisis
    assert not scan(f"i cant go on. {filler}. the pills are right here").is_crisis


def test_goodbye_at_the_end_of_a_meeting_does_not_page() -> None:
    assert not scan("goodbye everyone, see you next week").is_crisis
    assert not scan("thank you for everything tonight, see you tomorrow").is_crisis


# --------------------------------------------------------------------------------------------
# Evidence, interface
# --------------------------------------------------------------------------------------------


def test_evidence_names_rules_not_the_message() -> None:
    text = "honestly my name is Priya and i want to die tonight near Park Street"
    a = scan(text)
    assert a.evidence
    joined = " ".join(a.evidence)
    assert "Priya" not in joined and "Park Street" not in joined.lower().title()
    assert all(":" in e for e in a.evidence)
    assert any(e.startswith("suicide.wish_dead:") for e in a.evidence)


def test_evidence_explains_a_demotion() -> None:
    a = scan("I overdosed twice before I got clean")
    assert any("[past]" in e for e in a.evidence)


def test_assessment_is_frozen_and_none_is_not_crisis() -> None:
    a = scan("hello everyone")
    assert a == Assessment(Level.NONE, (), ())
    assert not a.is_crisis
    with pytest.raises(FrozenInstanceError):
        a.level = Level.HIGH  # type: ignore[misc]


def test_levels_are_ordered_by_urgency() -> None:
    assert Level.NONE < Level.CONCERN < Level.HIGH < Level.IMMINENT
    assert max([Level.HIGH, Level.CONCERN, Level.IMMINENT]) is Level.IMMINENT
    assert [lv.rank for lv in Level] == [0, 1, 2, 3]
    assert Level("high") is Level.HIGH and Level.HIGH == "high"


@pytest.mark.parametrize("text", ["", "   ", "\u200b\u200b", "...", "👍👍", "12345"])
def test_empty_or_meaningless_input_is_none(text: str) -> None:
    assert scan(text).level is Level.NONE


def test_default_lexicon_is_cached_and_versioned() -> None:
    assert load_lexicon() is load_lexicon()
    assert load_lexicon().version


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("I WANT TO DIE", "i want to die"),
        ("sooooo tired", "so tired"),
        ("k1ll mys3lf", "kil myself"),
        ("k\u200bill", "kil"),
        ("kіll", "kil"),  # Cyrillic i
        ("ｋｉｌｌ", "kil"),
        ("800mg", "DOSE"),
        ("at 3am", "at CLOCK"),
        ("took 30 pills", "tok NUM pils"),
        ("2nite", "tonight"),
        ("gonna", "going to"),
        ("I'm", "im"),
        ("DON`T STOP", "dont stop"),
        ("a\x00b\ttab~x", "a b tab x"),
        ("don’t", "dont"),
        ("self-harm", "self harm"),
        ("💊💊", "pil pil"),
        ("🔪", "knife"),
        ("wait... what?", "wait . . . what ?"),
        ("z̷a̶l̵g̴o̷", "zalgo"),
    ],
)
def test_normalize_makes_variants_look_alike(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "STRASSE straße",
        "ǅ İ ﬁnal",
        "Ｋ１ＬＬ ｍｙｓｅｌｆ",
        "cafe\u0301 a\u0308b",
        "x\u0336y",
        "I 💊WANT💊 TO DIE",
        "ΣΑΣ ok",
    ],
)
def test_non_ascii_runs_normalise_as_if_the_whole_message_were_folded(text: str) -> None:
    # Only the non-ASCII runs go through NFKD and casefold; the result must not depend on that.
    assert normalize(text) == normalize(unicodedata.normalize("NFKD", text).casefold())


@pytest.mark.parametrize(
    "piece", ["Ｉ ｗａｎｔ ｔｏ ｄｉｅ 💊 ", "kіll mysеlf z̷a̶l̵g̴o̷ ", "Straße ΣΑΣ ǅ İ ﬁ ", "a\u200bb 🔪🪦 "]
)
def test_much_non_ascii_text_normalises_like_a_little(piece: str) -> None:
    # A message with a few non-ASCII characters and one with many take different paths.
    assert normalize(piece * 12) == " ".join([normalize(piece)] * 12)


def test_leetspeak_symbols_count_only_inside_words() -> None:
    assert normalize("k!ll k*ll h|gh") == "kil kil hlgh"
    assert normalize("wow! ok | yes * no") == "wow . ok yes no"


def test_a_long_message_normalises_like_its_words_one_by_one() -> None:
    # Long text goes through the bulk letter squeeze, single words through the simple one;
    # letter runs, capitals, digits and punctuation must come out the same either way.
    rng = random.Random(20260521)
    words = [
        "".join(rng.choice("aaAbbzz1.!?") * rng.randint(1, 5) for _ in range(rng.randint(1, 6))) for _ in range(500)
    ]
    assert normalize(" ".join(words)) == " ".join(normalize(w) for w in words if normalize(w))


# --------------------------------------------------------------------------------------------
# A small lexicon passed in
# --------------------------------------------------------------------------------------------

SMALL = {
    "version": "test-1",
    "rule": [
        {
            "id": "t.wish",
            "role": "risk",
            "category": "suicide",
            "level": "high",
            "why": "test",
            "phrases": ["want to {die|vanish}"],
        },
        {"id": "t.neg", "role": "negation", "why": "test", "phrases": ["not", "dont"]},
        {"id": "t.time", "role": "plan", "group": "time", "why": "test", "phrases": ["tonight"]},
        {"id": "t.past", "role": "past", "why": "test", "phrases": ["used to"]},
    ],
}


def test_a_small_lexicon_can_be_passed_in() -> None:
    lex = compile_lexicon(SMALL)
    assert lex.version == "test-1"
    assert scan("i want to vanish", lex).level is Level.HIGH
    assert scan("i want to vanish tonight", lex).level is Level.IMMINENT
    assert scan("i dont want to die", lex).level is Level.NONE
    assert scan("i used to want to die", lex).level is Level.CONCERN
    assert scan("nobody would miss me", lex).level is Level.NONE


def test_lexicon_file_loads_from_a_path(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "lex.toml"  # type: ignore[operator]
    path.write_text(
        'version = "t2"\n[[rule]]\nid = "a"\nrole = "risk"\ncategory = "suicide"\nlevel = "high"\n'
        'why = "x"\nphrases = ["goodbye moon"]\n'
    )
    assert scan("goodbye moon", load_lexicon(path)).level is Level.HIGH


def test_a_lexicon_without_risk_or_weak_phrases_finds_nothing() -> None:
    # Context cues alone never raise a level (and the cheap "any risk phrase?" check is empty).
    lex = compile_lexicon({"version": "t3", "rule": [SMALL["rule"][2], SMALL["rule"][3]]})
    assert scan("i used to want to die tonight", lex).level is Level.NONE


def test_a_non_ascii_emoji_word_in_the_lexicon_does_not_break_scanning() -> None:
    lex = compile_lexicon({**SMALL, "normalize": {"emoji": {"🔪": "chāku"}}})
    assert scan("🔪 i want to die 🔪", lex).level is Level.HIGH
    assert scan("i dont want to die’ 🔪", lex).level is Level.NONE


def test_lexicons_keep_their_own_emoji_words_even_from_a_second_copy_of_the_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each table registers a codec error handler by name; the names must never collide.
    spec = importlib.util.spec_from_file_location("scanning_copy", scanning.__file__)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "scanning_copy", copy)  # dataclasses look their module up
    spec.loader.exec_module(copy)
    ours = compile_lexicon({**SMALL, "normalize": {"emoji": {"🌹": "rose"}}})
    theirs = copy.compile_lexicon({**SMALL, "normalize": {"emoji": {"🌹": "tulip"}}})
    assert normalize("🌹 Ｏｋ", ours) == "rose ok"
    assert copy.normalize("🌹 Ｏｋ", theirs) == "tulip ok"


@pytest.mark.parametrize(
    "text",
    [
        "I WANT TO DIE",  # ASCII: lower() stands in for casefold()
        "Ｉ ｗａｎｔ ｔｏ ｄｉｅ",  # fullwidth: NFKD
        "i wаnt tο diе",  # Cyrillic and Greek look-alikes
        "i\u00a0want\u2028to\u3000die",  # Unicode spaces separate words like a space
        "i want to die \ud800",  # a lone surrogate is just an unknown character
        "i 💊want to die💊",  # emoji glued to words
    ],
)
def test_ascii_and_unicode_spellings_read_alike(text: str) -> None:
    assert normalize(text).replace(" pil", "") == "i want to die"
    assert scan(text).level >= Level.HIGH


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"rule": SMALL["rule"]}, "version"),
        ({"version": "x", "rule": [{"id": "a", "role": "risk", "category": "suicide", "level": "high",
                                    "phrases": ["x"]}]}, "why"),
        ({"version": "x", "rule": [{"id": "a", "role": "risk", "category": "nope", "level": "high",
                                    "why": "y", "phrases": ["x"]}]}, "category"),
        ({"version": "x", "rule": [{"id": "a", "role": "wat", "why": "y", "phrases": ["x"]}]}, "role"),
        ({"version": "x", "rule": [{"id": "a", "role": "negation", "why": "y", "phrases": []}]}, "phrases"),
        ({"version": "x", "rule": [{"id": "a", "role": "negation", "why": "y", "phrases": ["x"]},
                                   {"id": "a", "role": "negation", "why": "y", "phrases": ["z"]}]}, "duplicate"),
        ({"version": "x", "rule": [{"id": "a", "role": "negation", "why": "y",
                                    "phrases": ["{a|b|c|d|e|f|g|h} {a|b|c|d|e|f|g|h} {a|b|c|d|e|f|g|h|i}"]}]},
         "forms"),
        ({"version": "x", "normalize": {"shorthand": {"k": "--"}}, "rule": SMALL["rule"]}, "expands to no words"),
    ],
)  # fmt: skip
def test_a_malformed_lexicon_is_refused(bad: dict[str, object], message: str) -> None:
    with pytest.raises(LexiconError, match=message):
        compile_lexicon(bad)


def test_every_bundled_rule_says_why() -> None:
    import tomllib

    from moderation.scanning import DEFAULT_LEXICON_PATH

    data = tomllib.loads(DEFAULT_LEXICON_PATH.read_text())
    assert all(len(r["why"]) > 20 for r in data["rule"])


# --------------------------------------------------------------------------------------------
# Adversarial inputs: every regex is linear and every step bounded, so these finish quickly
# --------------------------------------------------------------------------------------------

PATHOLOGICAL = {
    "repeated letters": "a" * 2000,
    "repeated mixed": "k1" * 1000,
    "repeated cue words": "kill myself " * 170,
    "elongated cue words": "kiiiiiilllll myyyyyseeeeelf " * 72,
    "cue and negation alternating": "not going to kill myself but want to die " * 50,
    "past and present markers": "used to now years ago tonight want to die " * 50,
    "cue on every line": "want to die\n" * 167,
    "quoted cues": '"i want to die" he said ' * 84,
    "every lexicon phrase": " . ".join(load_lexicon().keys[::5])[:2000],
    "shorthand": "kms rn 2nite u r gonna " * 87,
    "distinct mixed words": " ".join(f"{chr(97 + i % 26)}{i}{chr(97 + i // 26 % 26)}" for i in range(500))[:2000],
    "distinct numbers": " ".join(str(i) for i in range(700))[:2000],
    "emoji run": "💊" * 2000,
    "knife emoji run": "🔪🪦" * 1000,
    "emoji words": ("🔪💊🪦⚰️🪢" * 400)[:2000],
    "emoji between letters": "a💊" * 1000,
    "confusable letters": "кіll мyѕеlf " * 167,
    "another script": "मैं मरना चाहता हूँ " * 105,
    "ideographs between letters": "字a" * 1000,
    "zalgo": "k" + "\u0336\u0337\u0338" * 660,
    "zero width": "\u200b" * 2000,
    "zero width between letters": "a\u200b" * 1000,
    "punctuation run": "!?." * 666,
    "newlines": "\n" * 2000,
    "leet soup": "!|*$@" * 400,
    "digits": "9" * 2000,
    "quotes": '"' * 2000,
    "pronouns": "i you he " * 220,
    "hypothetical": "if i , " * 300,
    "long word": "x" * 1999 + "!",
    "idioms": "dying to kill it " * 110,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_input_completes_quickly(text: str) -> None:
    # CPU time (thread_time), best of several runs, so a busy machine's scheduler does not
    # count. The slowest of these takes well under 1 ms on the development machine; a
    # quadratic step on 2,000 characters would take far longer than this bound.
    assert len(text) >= 1800
    scan(text)  # warm up
    best = float("inf")
    for _ in range(5):
        t0 = time.thread_time()
        scan(text)
        best = min(best, time.thread_time() - t0)
    assert best < 0.005, f"{best * 1000:.1f} ms"


def test_repeated_crisis_text_still_pages() -> None:
    assert scan("not going to kill myself but want to die " * 50).is_crisis


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def test_cli_writes_one_json_line_per_input_line(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        json.dumps({"text": "i want to die tonight"}),
        "not json",
        json.dumps({"nope": 1}),
        json.dumps({"text": "see you next week"}),
    ]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main([]) == 0
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(rows) == 4
    assert rows[0]["level"] == "imminent" and rows[0]["categories"] == ["suicide"]
    assert "error" in rows[1] and "error" in rows[2]
    assert rows[3] == {"level": "none", "categories": [], "evidence": []}
