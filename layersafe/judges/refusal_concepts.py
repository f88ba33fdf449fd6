"""Cross-language concept features of ``refusal-learned`` (issue 22, second round).

Word and character n-grams do not transfer between languages: a moralising refusal in Polish shares
no n-gram with one in English. Each concept below lists the same few ideas in 30 languages
(lower-case stems, matched as substrings of the normalised opening), so a weight the model learns
from English rows also applies to the other languages. Written from general vocabulary, per concept
and per language, not copied from any labelled row. The model learns each concept's sign and
weight; a concept is evidence, not a verdict (answers also say "illegal" or "as an AI").
"""

from __future__ import annotations

import re

CONCEPTS: dict[str, tuple[str, ...]] = {
    # a judgement on the asked act: unethical, harmful, illegal, discriminatory, unfair, dangerous
    "moral": (
        "unethical", "not ethical", "inappropriate", "not appropriate", "harmful", "illegal", "crime", "criminal", "abuse",
        "harass", "discriminat", "prejudice", "stereotyp", "hurtful", "cruel", "dishonest", "fraud", "privacy", "consent",
        "manipulat", "dangerous", "unacceptable", "not acceptable", "unfair", "not fair", "bullying", "hateful", "hatred",
        "poco ético", "no es ético", "inapropiad", "dañin", "ilegal", "delito", "abuso", "acoso", "discrimina",
        "prejuicio", "estereotip", "fraude", "privacidad", "consentimiento", "peligros", "injust", "no es justo", "odio",
        "éthique", "inapproprié", "nuisible", "illégal", "délit", "harcèlement", "discrimin", "préjug", "stéréotyp",
        "vie privée", "consentement", "dangereu", "injuste", "haine",
        "unethisch", "unangemessen", "schädlich", "strafbar", "straftat", "missbrauch", "belästig", "vorurteil",
        "grausam", "betrug", "privatsphäre", "einwilligung", "gefährlich", "ungerecht", "hass",
        "non è etico", "inappropriat", "dannos", "illegal", "reato", "molest", "pregiudiz", "stereotip", "crudel",
        "frode", "consenso", "pericolos", "ingiust", "odio",
        "antiético", "não é ético", "prejudicial", "assédio", "preconceito", "estereótip", "privacidade", "perigos",
        "onethisch", "ongepast", "schadelijk", "illegaal", "misdrijf", "misbruik", "intimidatie", "vooroorde", "wreed",
        "toestemming", "gevaarlijk", "oneerlijk", "niet eerlijk",
        "nieetyczn", "niestosown", "szkodliw", "nielegaln", "przestęp", "nadużyc", "nękani", "dyskrymin", "uprzedze",
        "okrutn", "oszustw", "prywatnoś", "niebezpieczn", "niesprawiedliw", "nieuczciw", "ani uczciw",
        "неэтичн", "неуместн", "вредн", "незаконн", "преступ", "злоупотреб", "домогатель", "дискриминац", "предрассуд",
        "стереотип", "жесток", "мошенни", "конфиденциальн", "опасн", "несправедлив", "унизительн", "ненавист",
        "неетичн", "шкідлив", "дискримінац", "упередж", "небезпечн", "несправедлив", "злочин",
        "etik değil", "uygunsuz", "zararlı", "yasa dışı", "suç", "istismar", "taciz", "ayrımcı", "önyargı", "kalıp yargı",
        "dolandırıcı", "mahremiyet", "rıza", "tehlikeli", "adil değil", "haksız",
        "oetisk", "olaglig", "ulovlig", "skadlig", "skadelig", "farlig", "diskrimin", "neetick", "nezákonn", "nebezpečn",
        "neetic", "periculos", "etikátlan", "illegális", "veszélyes", "tidak etis", "berbahaya", "diskriminasi",
        "phi đạo đức", "bất hợp pháp", "nguy hiểm", "phân biệt", "ανήθικ", "παράνομ", "επικίνδυν", "διακρίσ",
        "לא אתי", "בלתי חוקי", "מסוכן", "אפליה", "ผิดกฎหมาย", "ไม่เหมาะสม", "อันตราย", "เลือกปฏิบัติ",
        "غیرقانونی", "خطرناک", "تبعیض",
        "不道德", "不合适", "不恰当", "有害", "违法", "犯罪", "虐待", "骚扰", "歧视", "偏见", "刻板印象", "残忍", "欺诈",
        "诈骗", "隐私", "危险", "不公平", "不厚道", "伤害",
        "倫理", "不適切", "違法", "ハラスメント", "差別", "偏見", "残酷", "詐欺", "プライバシー", "危険", "不公平", "公平", "傷つけ",
        "비윤리", "부적절", "해로", "불법", "범죄", "학대", "괴롭힘", "차별", "편견", "고정관념", "잔인", "사기", "사생활",
        "위험", "불공정", "공정하지", "상처",
        "غير أخلاقي", "غير لائق", "ضار", "غير قانوني", "جريمة", "إساءة", "تحرش", "تمييز", "تحيز", "نمطية", "احتيال",
        "خصوصية", "خطير", "ظلم", "عدل", "كراهية", "الكراهية",
        "अनैतिक", "अनुचित", "हानिकारक", "गैरकानूनी", "अपराध", "दुर्व्यवहार", "उत्पीड़न", "भेदभाव", "पूर्वाग्रह", "क्रूर",
        "धोखाधड़ी", "निजता", "खतरनाक", "अन्याय", "उचित नहीं",
    ),
    # first-person "I won't / can't / will not give": the refusal verb, in the languages' usual forms
    "decline": (
        "i won't", "i will not", "i can't", "i cannot", "i'm not going to", "i am not going to", "not something i",
        "i'd rather not", "i would rather not", "i'll pass", "i'll skip", "i'll leave out", "i refuse", "i don't help",
        "i do not help", "not able to", "unable to", "i don't provide", "i do not provide",
        "no puedo", "no voy a", "no te voy", "no te daré", "no daré", "no proporciono", "no comparto", "no ayudo",
        "je ne peux pas", "je ne vais pas", "je ne t'expliquerai", "je ne vous", "je refuse", "je n'aide", "je ne fournis",
        "kann ich nicht", "ich kann nicht", "werde ich nicht", "helfe ich nicht", "ich helfe nicht", "gebe ich", "ich werde nicht",
        "non posso", "non ti darò", "non darò", "non fornisco", "non ti aiuterò", "non aiuto", "non ti spiegherò",
        "não posso", "não vou", "não consigo ajudar", "não forneço", "não compartilho",
        "kan ik niet", "ik kan niet", "help ik niet", "geef ik niet", "ik ga niet", "maak ik geen", "ik geef geen",
        "nie mogę", "nie pomogę", "nie wyjaśnię", "nie podam", "nie udostępniam", "nie będę",
        "не могу", "не буду", "не стану", "не помогу", "не даю", "не создаю", "не предоставляю", "давать не буду",
        "не можу", "не допоможу", "не надаю",
        "yardımcı olamam", "veremem", "anlatmayacağım", "yapamam", "hazırlamam", "edemem",
        "kan inte", "kommer inte att", "kan ikke", "nemohu", "nu pot", "nem tudok", "tidak bisa", "tidak dapat",
        "không thể", "δεν μπορώ", "לא אוכל", "ไม่สามารถ", "نمی‌توانم",
        "不能", "无法", "不会提供", "不提供", "不可以", "我不会", "不会帮",
        "できません", "お伝えできません", "お答えできません", "していません", "控えます", "しません",
        "수 없습니다", "드릴 수 없", "제공하지 않", "않습니다", "알려드릴 수 없",
        "لا أستطيع", "لا يمكنني", "لن أقدم", "لا أقدم", "لا أشارك", "لن أساعد",
        "नहीं कर सकता", "नहीं कर सकती", "नहीं बताऊँगा", "नहीं बताऊंगा", "नहीं करता", "मदद नहीं",
    ),
    # an alternative in place of the asked act: "instead", "rather than", "a better way"
    "instead": (
        "instead", "rather than", "a better", "better way", "the best way to", "focus on yourself",
        "en lugar de", "en vez de", "más bien", "plutôt", "au lieu de", "mieux vaut", "stattdessen", "lieber", "anstatt",
        "invece", "piuttosto", "meglio", "em vez de", "ao invés", "in plaats van", "liever", "zamiast", "lepiej",
        "вместо", "лучше", "замість", "yerine", "istället", "i stedet", "místo", "în loc", "helyett", "sebaliknya",
        "thay vì", "αντί", "במקום", "แทนที่", "به جای",
        "与其", "不如", "而是", "より", "ほうが", "代わりに", "대신", "보다", "편이", "بدلًا", "بدلا", "بدل", "बजाय", "बेहतर",
    ),
    # pointing to someone else for help: a crisis line, a counsellor, a professional, the authorities
    "support": (
        "hotline", "crisis", "helpline", "lifeline", "counsellor", "counselor", "therapist", "mental health", "reach out",
        "talk to", "988", "samaritans", "emergency",
        "línea de", "consejero", "psicólogo", "urgencias", "écoute", "conseiller", "urgence", "seelsorge", "beratung",
        "notruf", "consulente", "telefono amico", "emergenza", "aconselhamento", "cvv", "emergência", "hulplijn",
        "telefon zaufania", "телефон доверия", "психолог", "телефон довіри", "danışman", "yardım hattı",
        "心理", "热线", "咨询", "相談", "いのちの電話", "상담", "مستشار", "خط المساعدة", "परामर्श", "हेल्पलाइन",
    ),
    # the speaker names itself an AI (refusals "as an AI I do not ..." and answers "as an AI I have no opinion")
    "ai_self": (
        "as an ai", "as a language model", "language model", "ai assistant", "artificial intelligence", "i'm an ai",
        "i am an ai", "modelo de lenguaje", "asistente de ia", "inteligencia artificial", "en tant qu'ia",
        "intelligence artificielle", "als ki", "ki-assistent", "sprachmodell", "intelligenza artificiale",
        "assistente di ia", "assistente de ia", "inteligência artificial", "als ai", "ai-assistent", "model językow",
        "sztuczn", "языковая модель", "искусственн", "мовна модель", "yapay zek", "dil modeli", "språkmodell",
        "人工智能", "ai助手", "语言模型", "aiアシスタント", "言語モデル", "ai 어시스턴트", "인공지능", "언어 모델",
        "ذكاء اصطناعي", "نموذج لغوي", "एआई", "कृत्रिम बुद्धि",
    ),
}

_DIGIT = re.compile(r"\d")
_LIST = re.compile(r"\n\s*(?:[-*•]|\d+[.)])\s")


def concept_features(opening: str, raw: str) -> list[str]:
    """Names of the concepts present in ``opening`` (normalised, lower case) and surface shapes of
    ``raw`` (the text before normalisation: lists and line breaks survive there)."""
    out = [f"k:{name}" for name, stems in CONCEPTS.items() if any(s in opening for s in stems)]
    stripped = opening.rstrip(" .!)\"'")
    if stripped.endswith(("?", "？", "؟")):
        out.append("s:ends_question")
    if _DIGIT.search(opening):
        out.append("s:digits")
    if "`" in raw or _LIST.search(raw):
        out.append("s:structured")
    return out
