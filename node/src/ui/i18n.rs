//! The till app's words, in Bahasa Indonesia (the default) and English.
//!
//! Every text is a [`Msg`]; [`t`] matches every message for every language, so a
//! missing translation does not compile.

/// A language of the till app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Bahasa Indonesia.
    #[default]
    Id,
    /// English.
    En,
}

impl Lang {
    /// `id` or `en`, as in `<html lang>` and the language cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    /// The language of a cookie value (Indonesian for anything else).
    pub fn from_code(code: &str) -> Lang {
        if code == "en" { Lang::En } else { Lang::Id }
    }
}

macro_rules! messages {
    ($($name:ident => $id:literal, $en:literal;)*) => {
        /// A text of the till app.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Msg { $(
            #[doc = $en]
            $name,
        )* }

        /// The text of `msg` in `lang`.
        pub fn t(msg: Msg, lang: Lang) -> &'static str {
            match (msg, lang) { $(
                (Msg::$name, Lang::Id) => $id,
                (Msg::$name, Lang::En) => $en,
            )* }
        }
    };
}

messages! {
    Login => "Masuk", "Log in";
    WhoAreYou => "Siapa yang bertugas?", "Who is on the till?";
    Pin => "PIN", "PIN";
    Delete => "Hapus", "Delete";
    WrongPin => "PIN salah", "Wrong PIN";
    LockedOut => "Terlalu banyak PIN salah: coba lagi dalam 5 menit", "Too many wrong PINs: try again in 5 minutes";
    PickUser => "Pilih nama dulu", "Pick a name first";
    NoUsers => "Belum ada pengguna: buat dengan `kasir user add`", "No users yet: add one with `kasir user add`";
    Logout => "Keluar", "Log out";
    Sell => "Kasir", "Sell";
    Bills => "Tagihan", "Open bills";
    History => "Riwayat", "History";
    Shift => "Shift", "Shift";
    OpenShift => "Buka Kasir", "Open the till";
    OpeningCash => "Modal awal (uang di laci)", "Opening cash (in the drawer)";
    CloseShift => "Tutup Kasir", "Close the till";
    CountedCash => "Uang dihitung di laci", "Cash counted in the drawer";
    ExpectedCash => "Seharusnya", "Expected";
    Counted => "Dihitung", "Counted";
    Difference => "Selisih", "Difference";
    CashIn => "Kas masuk", "Cash in";
    CashOut => "Kas keluar", "Cash out";
    Note => "Keterangan", "Note";
    Save => "Simpan", "Save";
    ScanOrSearch => "Scan barcode atau cari (3x untuk jumlah)", "Scan a barcode or search (3x for quantity)";
    NotFound => "Tidak ditemukan", "Not found";
    EmptyCart => "Keranjang kosong: scan barang", "The cart is empty: scan an item";
    Subtotal => "Subtotal", "Subtotal";
    Discount => "Diskon", "Discount";
    Tax => "Pajak", "Tax";
    Service => "Servis", "Service";
    Rounding => "Pembulatan", "Rounding";
    Total => "TOTAL", "TOTAL";
    Pay => "Bayar", "Pay";
    Cancel => "Batal", "Cancel";
    ParkBill => "Simpan tagihan", "Park the bill";
    BillName => "Nama tagihan (meja, pelanggan)", "Bill name (table, customer)";
    Resume => "Lanjutkan", "Resume";
    NoBills => "Tidak ada tagihan tersimpan", "No parked bills";
    Cash => "Tunai", "Cash";
    Qris => "QRIS", "QRIS";
    Card => "Kartu", "Card";
    Transfer => "Transfer", "Transfer";
    Ewallet => "E-wallet", "E-wallet";
    ExactCash => "Uang pas", "Exact cash";
    Amount => "Jumlah dibayar", "Amount tendered";
    Reference => "Referensi (no. EDC / QRIS)", "Reference (EDC / QRIS no.)";
    Method => "Metode", "Method";
    Change => "Kembalian", "Change";
    Receipt => "Struk", "Receipt";
    NewSale => "Transaksi baru", "New sale";
    Print => "Cetak", "Print";
    Reprint => "Cetak ulang", "Reprint";
    Printing => "Struk dikirim ke printer", "Receipt sent to the printer";
    NoPrinter => "Printer belum diatur", "No printer configured";
    Today => "Hari ini", "Today";
    ReceiptNo => "No. struk", "Receipt no.";
    Till => "Kasir", "Till";
    Status => "Status", "Status";
    Void => "Batalkan", "Void";
    Reason => "Alasan", "Reason";
    Approver => "Supervisor yang menyetujui", "Approving supervisor";
    ApproverPin => "PIN supervisor", "Supervisor's PIN";
    Voided => "Dibatalkan", "Voided";
    Completed => "Selesai", "Completed";
    Refunded => "Diretur", "Refunded";
    PartlyRefunded => "Diretur sebagian", "Partly refunded";
    NoSales => "Belum ada penjualan", "No sales yet";
    ZReport => "Laporan Z hari ini", "Today's Z-report";
    Sales => "Transaksi", "Sales";
    Net => "Bersih", "Net";
    ShiftOpenSince => "Shift dibuka", "Shift opened";
    By => "oleh", "by";
    Online => "Online", "Online";
    Lan => "LAN", "LAN";
    Alone => "Mandiri", "Standalone";
    Unsynced => "belum tersinkron", "not synced";
    Language => "English", "Bahasa Indonesia";
    Stock => "stok", "stock";
    Price => "Harga", "Price";
    ApprovedBy => "disetujui", "approved by";
    Remaining => "Sisa", "Remaining";
    OtherAmount => "Jumlah lain", "Another amount";
    Take => "Terima", "Take";
    NonCash => "Non-tunai", "Other methods";
    Copy => "SALINAN", "COPY";
    PrinterFailed => "Printer tidak merespons (penjualan tetap tersimpan)", "The printer does not answer (the sale is saved)";
    Printed => "Struk tercetak", "Receipt printed";
    PrinterReady => "Printer siap", "Printer ready";
    NewStore => "Toko baru", "New store";
    NewStoreHint => "Till ini belum punya toko. Buat tokonya dan akun pemilik; kasir lain ditambahkan sesudahnya.", "This till has no store yet. Create the store and the owner's account; cashiers are added afterwards.";
    SetupCode => "Kode pembuatan (tertulis di layar `kasir run`)", "Setup code (printed by `kasir run`)";
    StoreName => "Nama toko", "Store name";
    TillCode => "Kode till ini", "This till's code";
    OwnerName => "Nama pemilik", "Owner's name";
    Digits => "angka", "digits";
    PinAgain => "Ulangi PIN", "PIN again";
    CreateStore => "Buat toko", "Create the store";
    JoinHint => "Till kedua di toko yang sudah ada? Di till pertama buka Pengaturan → Undang till baru, lalu pindai atau tempel undangannya di sini (atau jalankan `kasir join <undangan>`).", "A second till for an existing store? On the first till open Settings → Invite a new till, then scan or paste the invite here (or run `kasir join <invite>`).";
    JoinStore => "Gabung toko", "Join a store";
    Invite => "Undangan", "Invite";
    Joining => "Menghubungi toko dan menyalin datanya…", "Reaching the store and copying its data…";
    BadInvite => "Undangan tidak terbaca", "The invite cannot be read";
    SetupClosed => "Terlalu banyak kode salah: jalankan `kasir run` lagi", "Too many wrong codes: start `kasir run` again";
    WrongSetupCode => "Kode pembuatan salah", "Wrong setup code";
    Refund => "Retur", "Refund";
    StockTitle => "Stok", "Stock";
    Product => "Produk", "Product";
    Oversold => "minus", "oversold";
    LowStock => "menipis", "low";
    MinStock => "Stok minimum", "Minimum stock";
    Move => "Terima / retur / opname", "Receive / return / count";
    Receive => "Terima barang", "Goods received";
    SupplierReturn => "Retur ke pemasok", "Return to supplier";
    PurchaseCost => "Harga beli per satuan (Rp)", "Purchase cost per unit (Rp)";
    Supplier => "Pemasok", "Supplier";
    CostShort => "HPP", "Cost";
    Grosir => "harga grosir", "bulk price";
    Opname => "Opname (hitung)", "Stocktake (count)";
    QtyOrCounted => "Jumlah diterima / hasil hitung", "Quantity received / counted";
    ProductAddEdit => "Tambah / ubah produk", "Add / change a product";
    Category => "Kategori", "Category";
    CountByNote => "Hitung per pecahan", "Count by note";
    NothingToRefund => "Isi jumlah yang diretur", "Type the quantities to refund";
    PinsDiffer => "Kedua PIN tidak sama", "The two PINs differ";
    Settings => "Pengaturan", "Settings";
    All => "Semua", "All";
    ImportProducts => "Impor produk (CSV / Excel)", "Import products (CSV / Excel)";
    ImportHint => "Baris pertama berisi judul kolom: sku (atau kode), nama, harga; boleh juga barcode, modal, kategori, satuan, stok. Produk dengan SKU yang sudah ada diperbarui.", "The first row names the columns: sku (or kode), nama, harga; also barcode, modal, kategori, satuan, stok. Products whose SKU exists are updated.";
    Import => "Impor", "Import";
    ChooseFile => "Pilih berkas CSV atau Excel", "Choose a CSV or Excel file";
    ProductsImported => "produk diimpor", "products imported";
    RowsRefused => "baris ditolak:", "rows refused:";
    Row => "Baris", "Row";
    ReportSent => "Laporan dikirim ke printer", "Report sent to the printer";
    PrintOnPrinter => "Cetak di printer struk", "Print on the receipt printer";
    PrintOnPaper => "Cetak ke kertas (browser)", "Print on paper (browser)";
    ScaleLabels => "Label timbangan (kode 20–29)", "Scale labels (codes 20–29)";
    ScaleWeight => "Berisi berat (gram)", "Carry the weight (grams)";
    ScalePrice => "Berisi harga (rupiah)", "Carry the price (rupiah)";
    FindReceipt => "Cari nomor struk (semua hari)", "Find a receipt number (any day)";
    Found => "hasil cari", "found";
    ManagersOnly => "Hanya manajer atau pemilik yang boleh membuka pengaturan.", "Only a manager or the owner may open the settings.";
    StoreProfile => "Profil toko dan pajak", "Store profile and tax";
    Address => "Alamat", "Address";
    Phone => "Telepon", "Phone";
    Customers => "Pelanggan", "Customers";
    QrisDynamic => "QRIS dinamis", "Dynamic QRIS";
    QrisWaiting => "Menunggu pembayaran… Minta pelanggan memindai QR ini.", "Waiting for the payment… Ask the customer to scan this QR.";
    QrisPrint => "Cetak QR", "Print the QR";
    QrisPrinted => "QR dicetak — berikan ke pelanggan.", "QR printed — hand it to the customer.";
    QrisViaPeer => "Kasir ini tanpa internet: QR dibuat lewat kasir lain di toko.", "This till has no internet: the QR was made through another till in the shop.";
    QrisExpired => "QR kedaluwarsa, belum dibayar. Buat QR baru atau pilih cara bayar lain.", "The QR expired unpaid. Make a new one or take another method.";
    QrisFailed => "Pembayaran QRIS gagal", "The QRIS payment failed";
    QrisUnrecorded => "Dibayar, tetapi penjualan belum tercatat — panggil supervisor", "Paid, but the sale is not recorded — call a supervisor";
    BackToPay => "Kembali ke Bayar", "Back to Bayar";
    Kasbon => "Kasbon (utang pelanggan)", "Kasbon (customers' credit)";
    NoCustomers => "Belum ada pelanggan. Tambahkan di bawah.", "No customers yet. Add one below.";
    CustomerName => "Nama pelanggan", "Customer name";
    Owes => "Utang", "Owes";
    DueDate => "Jatuh tempo", "Due";
    Overdue => "Terlambat", "Overdue";
    PayMethod => "Cara bayar", "Paid by";
    AddCustomer => "Tambah pelanggan", "Add a customer";
    KasbonPay => "Kasbon (bayar nanti)", "Kasbon (pay later)";
    KasbonFor => "Sisa dicatat sebagai utang", "The rest goes on credit for";
    NoCustomerChosen => "Pilih pelanggan", "Choose the customer";
    Zone => "Zona waktu", "Time zone";
    TaxExclusive => "Harga belum termasuk pajak (pajak ditambahkan di kasir)", "Prices exclude the tax (added at the till)";
    ServiceCharge => "Biaya layanan", "Service charge";
    TaxCodeLabel => "Pajak produk", "Product tax";
    TaxCodeKeep => "(tidak diubah)", "(unchanged)";
    TaxCodeStandard => "Sesuai aturan toko", "The store's rule";
    TaxCodeExempt => "Bebas PPN (beras, telur, sayur, daging segar…)", "PPN-exempt (rice, eggs, vegetables, fresh meat…)";
    TaxCodePbjt => "PBJT (makanan/minuman siap saji)", "PBJT (ready food and drink)";
    TaxCodeLuxury => "PPN 12% penuh (barang mewah)", "Full 12% PPN (luxury goods)";
    ServiceTaxed => "Biaya layanan ikut dikenai pajak (PBJT: Perda DKI 1/2024 ps. 51)", "Service charge is taxed too (PBJT: Perda DKI 1/2024 art. 51)";
    PbjtFood => "PBJT makanan siap saji (%), untuk produk berkode pajak pbjt", "PBJT on ready food (%), for products with tax code pbjt";
    DayCutoff => "Hari usaha mulai jam (0–6, untuk toko buka lewat tengah malam)", "Business day starts at (0–6, for shops open past midnight)";
    CashRoundingTo => "Pembulatan tunai", "Cash rounding";
    NoRounding => "Tanpa pembulatan", "No rounding";
    RoundDown => "Selalu bulatkan ke bawah (untung pembeli; ke terdekat hanya sampai Rp100)", "Always round down (in the customer's favour; nearest only up to Rp100)";
    ReceiptHeader => "Baris atas struk", "Receipt header line";
    ReceiptFooter => "Baris bawah struk", "Receipt footer line";
    DiscountApproval => "Diskon kasir di atas ini perlu persetujuan", "A cashier's discount above this needs approval";
    NoTax => "Tanpa pajak", "No tax";
    Saved => "Tersimpan", "Saved";
    Printer => "Printer struk", "Receipt printer";
    PrinterAddress => "Alamat printer (kosongkan untuk melepas)", "Printer address (empty to remove)";
    PaperWidth => "Lebar kertas", "Paper width";
    DrawerOnPrinter => "Laci uang terhubung ke printer", "Cash drawer on the printer";
    TestPrint => "Cetak tes", "Test print";
    Users => "Pengguna dan PIN", "Users and PINs";
    Name => "Nama", "Name";
    Role => "Peran", "Role";
    Inactive => "nonaktif", "disabled";
    ChangePin => "Ganti PIN", "Change PIN";
    Disable => "Nonaktifkan", "Disable";
    DisableConfirm => "Ya, nonaktifkan", "Yes, disable";
    AddUser => "Tambah pengguna", "Add a user";
    UserAdded => "Ditambahkan:", "Added:";
    PinChanged => "PIN diganti", "PIN changed";
    UserDisabled => "Pengguna dinonaktifkan", "User disabled";
    RoleCashier => "Kasir", "Cashier";
    RoleSupervisor => "Supervisor", "Supervisor";
    RoleManager => "Manajer", "Manager";
    RoleOwner => "Pemilik", "Owner";
    Devices => "Perangkat toko", "Store devices";
    ThisTill => "till ini", "this till";
    Revoke => "Cabut", "Revoke";
    Revoked => "dicabut", "revoked";
    RevokeHint => "Perangkat yang dicabut tidak bisa lagi menyinkronkan; perubahannya ditolak di semua till.", "A revoked device can no longer sync; its changes are refused on every till.";
    InviteTill => "Undang till baru", "Invite a new till";
    RoleTill => "Till (kasir)", "Till";
    RoleManagerDevice => "Perangkat manajer", "Manager device";
    MakeInvite => "Buat undangan", "Make the invite";
    InviteMade => "Undangan dibuat: pindai kodenya di till baru (sekali pakai)", "Invite made: scan it on the new till (one use)";
    InviteHint => "Di till baru jalankan `kasir run`, buka halamannya, pilih Gabung toko dan pindai atau tempel undangan ini.", "On the new till run `kasir run`, open its page, choose Join a store and scan or paste this invite.";
    CancelInvite => "Batalkan undangan", "Cancel the invite";
    InviteCancelled => "Undangan dibatalkan", "Invite cancelled";
    DeviceRevoked => "Perangkat dicabut", "Device revoked";
}
