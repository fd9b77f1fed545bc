"""Texts in many languages and scripts, to check that the compact language model
(``emberwatch.scoring._langid``) answers exactly as py3langid does: for
tests/scoring/test_language_model.py and ``bench/language_speed.py --same``. Written for
this check (one customer complaint and one word of praise a language, more for a few);
the random texts reach byte sequences no sentence would."""

from __future__ import annotations

import random

SENTENCES: dict[str, list[str]] = {
    "de": [
        "Der Kundenservice hat mir nicht geholfen und die Lieferung kam zu spät.",
        "Ich bin sehr zufrieden mit dem neuen Handy, der Akku hält lange.",
        "Warum funktioniert die App seit dem Update nicht mehr?",
    ],
    "fr": [
        "Le service client ne répond jamais, c'est inadmissible.",
        "J'adore ce restaurant, les plats sont délicieux et le personnel est charmant.",
        "Pourquoi ma commande n'est-elle toujours pas arrivée ?",
    ],
    "es": [
        "El pedido llegó roto y nadie me responde desde hace una semana.",
        "Me encanta la nueva versión de la aplicación, es mucho más rápida.",
        "¿Alguien sabe por qué no puedo iniciar sesión?",
    ],
    "it": [
        "Il volo è stato cancellato senza nessun preavviso, vergogna.",
        "Ottimo servizio, consegna veloce e prodotto di qualità.",
        "Qualcuno sa quando riapre il negozio in centro?",
    ],
    "pt": [
        "O atendimento foi péssimo e ainda me cobraram duas vezes.",
        "Adorei o produto, chegou antes do prazo e bem embalado.",
        "Alguém sabe se a loja abre no domingo?",
    ],
    "nl": [
        "De bezorging was weer te laat en de klantenservice reageert niet.",
        "Heel blij met mijn nieuwe fiets, echt een aanrader.",
        "Weet iemand waarom de app steeds crasht?",
    ],
    "sv": [
        "Leveransen var försenad och ingen svarade på mina mejl.",
        "Jättebra service, jag kommer definitivt att handla här igen.",
    ],
    "da": [
        "Pakken kom aldrig frem, og kundeservice svarer ikke.",
        "Rigtig god oplevelse, hurtig levering og flot produkt.",
    ],
    "no": [
        "Flyet var forsinket i tre timer uten noen forklaring.",
        "Veldig fornøyd med kjøpet, anbefales på det sterkeste.",
    ],
    "fi": [
        "Paketti ei ole vieläkään saapunut, ja asiakaspalvelu ei vastaa.",
        "Todella hyvä palvelu, kiitos nopeasta toimituksesta!",
    ],
    "pl": [
        "Zamówienie przyszło uszkodzone, a obsługa klienta milczy.",
        "Bardzo polecam, szybka dostawa i świetny kontakt ze sprzedawcą.",
    ],
    "cs": [
        "Objednávka dorazila pozdě a zboží bylo poškozené.",
        "Jsem velmi spokojený, rychlé dodání a skvělá kvalita.",
    ],
    "sk": [
        "Objednávka prišla neskoro a tovar bol poškodený.",
        "Som veľmi spokojná s nákupom, odporúčam.",
    ],
    "hu": [
        "A csomag még mindig nem érkezett meg, és senki sem válaszol.",
        "Nagyon elégedett vagyok, gyors szállítás és jó minőség.",
    ],
    "ro": [
        "Comanda a ajuns deteriorată și nimeni nu răspunde la telefon.",
        "Sunt foarte mulțumit de produs, livrare rapidă.",
    ],
    "tr": [
        "Siparişim hala gelmedi ve müşteri hizmetleri cevap vermiyor.",
        "Ürün çok güzel, hızlı kargo için teşekkürler.",
    ],
    "id": [
        "Pesanan saya belum sampai dan tidak ada yang membalas pesan saya.",
        "Pelayanannya sangat bagus, terima kasih banyak.",
    ],
    "ms": [
        "Pesanan saya masih belum sampai walaupun sudah seminggu.",
        "Perkhidmatan yang sangat baik, terima kasih.",
    ],
    "tl": [
        "Hindi pa rin dumarating ang order ko at walang sumasagot.",
        "Ang ganda ng serbisyo nila, salamat po.",
    ],
    "vi": [
        "Đơn hàng của tôi vẫn chưa đến và không ai trả lời.",
        "Dịch vụ rất tốt, giao hàng nhanh, cảm ơn shop.",
    ],
    "ru": [
        "Заказ так и не пришёл, а служба поддержки молчит.",
        "Очень доволен покупкой, быстрая доставка и отличное качество.",
    ],
    "uk": [
        "Замовлення досі не прийшло, а підтримка не відповідає.",
        "Дуже задоволена покупкою, рекомендую всім.",
    ],
    "bg": [
        "Поръчката все още не е пристигнала и никой не отговаря.",
        "Много съм доволен от покупката, бърза доставка.",
    ],
    "sr": [
        "Поруџбина још није стигла и нико не одговара на поруке.",
        "Veoma sam zadovoljan kupovinom, brza dostava.",
    ],
    "el": [
        "Η παραγγελία μου δεν έχει φτάσει ακόμα και κανείς δεν απαντά.",
        "Πολύ ευχαριστημένος με την αγορά, γρήγορη παράδοση.",
    ],
    "ar": ["لم يصل طلبي حتى الآن ولا أحد يرد على رسائلي.", "خدمة ممتازة وتوصيل سريع، شكرا جزيلا."],
    "fa": ["سفارش من هنوز نرسیده و هیچ کس جواب نمی دهد.", "خدمات عالی بود، خیلی ممنون."],
    "he": ["ההזמנה שלי עדיין לא הגיעה ואף אחד לא עונה.", "שירות מצוין ומשלוח מהיר, תודה רבה."],
    "hi": [
        "मेरा ऑर्डर अभी तक नहीं आया और कोई जवाब नहीं दे रहा है।",
        "बहुत अच्छी सेवा, तेज़ डिलीवरी के लिए धन्यवाद।",
    ],
    "bn": ["আমার অর্ডার এখনও আসেনি এবং কেউ উত্তর দিচ্ছে না।", "খুব ভালো সেবা, ধন্যবাদ।"],
    "ta": ["என் ஆர்டர் இன்னும் வரவில்லை, யாரும் பதில் சொல்லவில்லை.", "மிகவும் நல்ல சேவை, நன்றி."],
    "th": ["สินค้ายังไม่มาส่งเลย และไม่มีใครตอบข้อความ", "บริการดีมาก ส่งของเร็ว ขอบคุณค่ะ"],
    "ja": [
        "注文した商品がまだ届きません。問い合わせても返事がありません。",
        "とても良いサービスでした。また利用したいです。",
    ],
    "zh": ["我的订单到现在还没到，客服也不回复。", "服务很好，发货很快，谢谢！"],
    "ko": [
        "주문한 상품이 아직도 도착하지 않았고 아무도 답변하지 않아요.",
        "서비스가 정말 좋아요, 배송도 빨라요.",
    ],
    "ka": ["ჩემი შეკვეთა ჯერ არ მოსულა და არავინ პასუხობს.", "ძალიან კარგი მომსახურება, მადლობა."],
    "hy": [
        "Իմ պատվերը դեռ չի եկել, և ոչ ոք չի պատասխանում։",
        "Շատ լավ սպասարկում, շնորհակալություն։",
    ],
    "lt": [
        "Mano užsakymas vis dar neatkeliavo ir niekas neatsako.",
        "Labai geras aptarnavimas, ačiū.",
    ],
    "lv": [
        "Mans pasūtījums joprojām nav atnācis un neviens neatbild.",
        "Ļoti labs serviss, paldies.",
    ],
    "et": [
        "Minu tellimus pole ikka veel kohale jõudnud ja keegi ei vasta.",
        "Väga hea teenindus, aitäh.",
    ],
    "ca": ["La meva comanda encara no ha arribat i ningú no respon.", "Molt bon servei, gràcies."],
    "eu": [
        "Nire eskaera oraindik ez da iritsi eta inork ez du erantzuten.",
        "Oso zerbitzu ona, eskerrik asko.",
    ],
    "sw": ["Agizo langu bado halijafika na hakuna anayejibu.", "Huduma nzuri sana, asante."],
    "af": [
        "My bestelling het nog nie aangekom nie en niemand antwoord nie.",
        "Baie goeie diens, dankie.",
    ],
    "en": [
        "The delivery was late again and support never answered my emails.",
        "lol this update is actually great ngl",
    ],
}
# Code point ranges: Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, Devanagari,
# Bengali, Tamil, Thai, Georgian, Ethiopic, kana, CJK, Hangul, emoji, ASCII.
SCRIPTS = [
    (0x41, 0x7A),
    (0xC0, 0x24F),
    (0x370, 0x3FF),
    (0x400, 0x4FF),
    (0x530, 0x58F),
    (0x5D0, 0x5EA),
    (0x600, 0x6FF),
    (0x900, 0x97F),
    (0x980, 0x9FF),
    (0xB80, 0xBFF),
    (0xE00, 0xE7F),
    (0x10A0, 0x10FF),
    (0x1200, 0x137F),
    (0x3040, 0x30FF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7A3),
    (0x1F300, 0x1F64F),
    (0x20, 0x7E),
]


def sample(seed: int = 7, n_random: int = 3000) -> list[str]:
    """Each sentence as written, upper- and lower-cased, halved and with a handle, hashtag
    and link; ``n_random`` word salads from all of them; ``n_random`` runs of random code
    points from :data:`SCRIPTS`."""
    rng = random.Random(seed)
    out: list[str] = []
    words: list[str] = []
    for sents in SENTENCES.values():
        for s in sents:
            out += [s, s.upper(), s.lower(), s[: len(s) // 2], s + " #fail @Acme https://x.co/a"]
            words += s.split()
    for _ in range(n_random):
        k = rng.randint(1, 25)
        out.append(" ".join(rng.choice(words) for _ in range(k)))
    for _ in range(n_random):
        parts = []
        for _ in range(rng.randint(1, 6)):
            lo, hi = rng.choice(SCRIPTS)
            parts.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 30))))
        out.append(" ".join(parts))
    return out
